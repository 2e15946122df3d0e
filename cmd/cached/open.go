package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/catalog/sqlite"
	"github.com/nix-cached/cached/storage"
	"github.com/nix-cached/cached/storage/disk"
)

// dataFlags are the flags every command that touches the cache's data
// takes, so that `cached token`, and later `cached gc`, run against the
// same data as a running server.
type dataFlags struct {
	dataDir string
}

func addDataFlags(fs *flag.FlagSet) *dataFlags {
	d := &dataFlags{}
	fs.StringVar(&d.dataDir, "data-dir", "cached-data", "`directory` holding the database, blobs and generated keys")
	return d
}

// backend is an opened cache: its blobs and its metadata.
type backend struct {
	store storage.Store
	cat   catalog.Catalog
}

func (b *backend) Close() error {
	err1 := b.cat.Close()
	err2 := b.store.Close()
	if err1 != nil {
		return err1
	}
	return err2
}

// open opens (creating if needed) the data directory's blob store and
// catalog.
func (d *dataFlags) open(ctx context.Context) (*backend, error) {
	if err := os.MkdirAll(d.dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("creating data directory: %w", err)
	}
	store, err := disk.New(filepath.Join(d.dataDir, "blobs"))
	if err != nil {
		return nil, fmt.Errorf("opening blob storage: %w", err)
	}
	cat, err := sqlite.Open(ctx, filepath.Join(d.dataDir, "cached.db"))
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("opening catalog: %w", err)
	}
	return &backend{store: store, cat: cat}, nil
}
