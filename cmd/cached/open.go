package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/catalog/postgres"
	"github.com/nix-cached/cached/catalog/sqlite"
	"github.com/nix-cached/cached/storage"
	"github.com/nix-cached/cached/storage/disk"
	"github.com/nix-cached/cached/storage/s3"
)

// dataFlags are the flags every command that touches the cache's data
// takes, so that `cached token`, `cached verify` and later `cached gc` run
// against the same data as a running server.
type dataFlags struct {
	dataDir  string
	storage  string
	database string
}

func addDataFlags(fs *flag.FlagSet) *dataFlags {
	d := &dataFlags{}
	fs.StringVar(&d.dataDir, "data-dir", "cached-data", "`directory` holding the database, generated keys and (by default) the blobs")
	fs.StringVar(&d.storage, "storage", "", "where blobs live: file:///PATH, or s3://BUCKET/PREFIX?endpoint=URL&region=R (default: file://DATA-DIR/blobs)")
	fs.StringVar(&d.database, "database", "", "where metadata lives: postgres://USER:PASSWORD@HOST/DB, or sqlite:///PATH (default: SQLite in DATA-DIR/cached.db)")
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

// openStorage opens the blob store that --storage names.
func (d *dataFlags) openStorage(ctx context.Context) (storage.Store, error) {
	switch {
	case d.storage == "":
		return disk.New(filepath.Join(d.dataDir, "blobs"))
	case strings.HasPrefix(d.storage, "file:"):
		u, err := url.Parse(d.storage)
		if err != nil || u.Host != "" || !filepath.IsAbs(u.Path) || u.RawQuery != "" {
			return nil, fmt.Errorf("%w: --storage %q: want file:///ABSOLUTE/PATH", errUsage, d.storage)
		}
		return disk.New(u.Path)
	case strings.HasPrefix(d.storage, "s3:"):
		cfg, err := s3.ParseURL(d.storage)
		if err != nil {
			return nil, fmt.Errorf("%w: --storage: %v", errUsage, err)
		}
		return s3.New(ctx, cfg)
	}
	return nil, fmt.Errorf("%w: --storage %q: want file:///PATH or s3://BUCKET/PREFIX", errUsage, d.storage)
}

// openExisting opens the cache for a maintenance command, refusing a data
// directory that does not exist when the catalog lives there: opening would
// create an empty cache.
func (d *dataFlags) openExisting(ctx context.Context) (*backend, error) {
	if d.database == "" {
		if _, err := os.Stat(d.dataDir); err != nil {
			return nil, fmt.Errorf("data directory: %w", err)
		}
	}
	return d.open(ctx)
}

// open opens (creating if needed) the data directory's catalog and the
// blob store.
func (d *dataFlags) open(ctx context.Context) (*backend, error) {
	if err := os.MkdirAll(d.dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("creating data directory: %w", err)
	}
	store, err := d.openStorage(ctx)
	if err != nil {
		return nil, fmt.Errorf("opening blob storage: %w", err)
	}
	cat, err := d.openCatalog(ctx)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("opening catalog: %w", err)
	}
	return &backend{store: store, cat: cat}, nil
}

// openCatalog opens the metadata store that --database names. The URL
// holds a password: it never appears in an error.
func (d *dataFlags) openCatalog(ctx context.Context) (catalog.Catalog, error) {
	switch {
	case d.database == "":
		return sqlite.Open(ctx, filepath.Join(d.dataDir, "cached.db"))
	case strings.HasPrefix(d.database, "sqlite:"):
		u, err := url.Parse(d.database)
		if err != nil || u.Host != "" || !filepath.IsAbs(u.Path) || u.RawQuery != "" {
			return nil, fmt.Errorf("%w: --database sqlite: want sqlite:///ABSOLUTE/PATH", errUsage)
		}
		return sqlite.Open(ctx, u.Path)
	case strings.HasPrefix(d.database, "postgres://"), strings.HasPrefix(d.database, "postgresql://"):
		return postgres.Open(ctx, d.database)
	}
	return nil, fmt.Errorf("%w: --database: want postgres://… or sqlite:///PATH", errUsage)
}
