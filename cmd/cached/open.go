package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
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
	fs.StringVar(&d.storage, "storage", "", "where blobs live (`URL`): file:///PATH, or s3://BUCKET/PREFIX?endpoint=URL&region=R (default: file://DATA-DIR/blobs)")
	fs.StringVar(&d.database, "database", "", "where metadata lives (`URL`): postgres://USER:PASSWORD@HOST/DB, or sqlite:///PATH (default: SQLite in DATA-DIR/cached.db)")
	return d
}

// backend is an opened cache: its blobs and its metadata.
type backend struct {
	store storage.Store
	cat   catalog.Catalog
	// catalogExisted is whether the catalog is known to predate this
	// open: its SQLite file was there (never set for PostgreSQL).
	catalogExisted bool
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

// errNoCache is why a command other than `cached serve` refuses to run: it
// was pointed at a place that holds no cache, and opening it there would
// create an empty one.
var errNoCache = errors.New("no cache")

// openExisting opens the cache for a maintenance command, after
// requireExisting: unlike create, it never makes a data directory or an
// empty catalog.
func (d *dataFlags) openExisting(ctx context.Context) (*backend, error) {
	if err := d.requireExisting(); err != nil {
		return nil, err
	}
	return d.open(ctx)
}

// requireExisting checks, without creating anything, that the cache the
// flags name is there: a SQLite catalog's file (DATA-DIR/cached.db by
// default), and the data directory when it holds the catalog or the blobs.
// A PostgreSQL catalog is named explicitly, in a database that an operator
// made, and with it and --storage the data directory is not used at all.
// It fails with errNoCache, naming the absolute path, when one is missing.
func (d *dataFlags) requireExisting() error {
	dir, err := filepath.Abs(d.dataDir)
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	file, isSQLite, err := d.catalogFile()
	if err != nil {
		return err
	}
	const hint = "only `cached serve` creates one"
	if d.storage == "" || d.database == "" {
		if ok, err := exists(dir); err != nil {
			return fmt.Errorf("data directory: %w", err)
		} else if !ok {
			return fmt.Errorf("%w: data directory %s does not exist; %s (pass --data-dir with the directory of an existing cache)", errNoCache, dir, hint)
		}
	}
	if !isSQLite {
		return nil
	}
	ok, err := exists(file)
	switch {
	case err != nil:
		return fmt.Errorf("catalog: %w", err)
	case ok:
		return nil
	case d.database == "":
		return fmt.Errorf("%w: data directory %s holds no cache (no %s); %s (pass --data-dir with the directory of an existing cache)", errNoCache, dir, filepath.Base(file), hint)
	}
	return fmt.Errorf("%w: catalog %s does not exist; %s (check --database)", errNoCache, file, hint)
}

// exists reports whether path exists; an error is one other than its absence.
func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// create opens the cache for `cached serve`, the one command that makes
// the data directory, and an empty catalog, when they are not there.
func (d *dataFlags) create(ctx context.Context) (*backend, error) {
	if err := os.MkdirAll(d.dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("creating data directory: %w", err)
	}
	return d.open(ctx)
}

// open opens the blob store and the catalog. A SQLite catalog that is not
// there is created: callers check first (openExisting) or mean it (create).
func (d *dataFlags) open(ctx context.Context) (*backend, error) {
	store, err := d.openStorage(ctx)
	if err != nil {
		return nil, fmt.Errorf("opening blob storage: %w", err)
	}
	cat, existed, err := d.openCatalog(ctx)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("opening catalog: %w", err)
	}
	return &backend{store: store, cat: cat, catalogExisted: existed}, nil
}

// catalogFile returns the SQLite catalog's file, DATA-DIR/cached.db or
// the path of a sqlite:/// --database; isSQLite is false for PostgreSQL.
func (d *dataFlags) catalogFile() (file string, isSQLite bool, err error) {
	switch {
	case d.database == "":
		return filepath.Join(d.dataDir, "cached.db"), true, nil
	case strings.HasPrefix(d.database, "sqlite:"):
		u, err := url.Parse(d.database)
		if err != nil || u.Host != "" || !filepath.IsAbs(u.Path) || u.RawQuery != "" {
			return "", false, fmt.Errorf("%w: --database sqlite: want sqlite:///ABSOLUTE/PATH", errUsage)
		}
		return u.Path, true, nil
	}
	return "", false, nil
}

// openCatalog opens the metadata store that --database names, and reports
// whether it existed before: true when its SQLite file was there, false
// for a new SQLite file and for PostgreSQL (unknown). The URL holds a
// password: it never appears in an error.
func (d *dataFlags) openCatalog(ctx context.Context) (catalog.Catalog, bool, error) {
	file, isSQLite, err := d.catalogFile()
	switch {
	case err != nil:
		return nil, false, err
	case isSQLite:
		existed, err := exists(file)
		if err != nil {
			return nil, false, err
		}
		cat, err := sqlite.Open(ctx, file)
		if err != nil {
			return nil, false, err
		}
		return cat, existed, nil
	case strings.HasPrefix(d.database, "postgres://"), strings.HasPrefix(d.database, "postgresql://"):
		cat, err := postgres.Open(ctx, d.database)
		if err != nil {
			return nil, false, err
		}
		return cat, false, nil
	}
	return nil, false, fmt.Errorf("%w: --database: want postgres://… or sqlite:///PATH", errUsage)
}
