// Package sqlite is the SQLite implementation of catalog.Catalog: one
// database file in WAL mode, written through a single connection with
// immediate transactions and read through a small pool, so that the server
// and operator commands can share the file.
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"runtime"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/nix-cached/cached/catalog"
)

var (
	// ErrSchemaTooNew is returned by Open when the database carries
	// migrations this binary does not know, i.e. a newer cached wrote it.
	ErrSchemaTooNew = errors.New("sqlite catalog: database schema is newer than this binary")
	// ErrMigration is returned by Open when the schema could not be brought
	// up to date.
	ErrMigration = errors.New("sqlite catalog: migration failed")
	// ErrNoWAL is returned by Open when the database cannot be put in WAL
	// mode, which sharing it between processes needs.
	ErrNoWAL = errors.New("sqlite catalog: cannot enable WAL journal mode")
	// ErrInvalid is returned for arguments no call can satisfy, such as an
	// empty lock holder or unordered Stats ages.
	ErrInvalid = errors.New("sqlite catalog: invalid argument")
)

// busyTimeout is how long a call waits for another connection or process
// holding the write lock before it fails.
const busyTimeout = 10 * time.Second

// stmtCacheSize is the number of prepared statements each connection keeps.
const stmtCacheSize = 32

// writerCacheKiB is the page cache of the one writing connection. A
// collection deletes paths scattered over the whole database, and with
// SQLite's default 2 MiB every deletion reads its pages back from the
// file. Memory is taken only as pages are touched.
const writerCacheKiB = 64 << 10

// walCheckpointPages is how many pages the WAL grows to before a commit
// copies it back into the database (SQLite's default is 1,000). A
// collection dirties pages all over a large database; checkpointing
// every 4 MiB wrote each of them out again and again, with an fsync of
// the database each time: at a million paths, 256 MiB halves the time
// of a collection (133 s to 75 s) and the system time (80 s to 31 s).
// Pushes rarely cross it, and the WAL file is reused, not grown.
const walCheckpointPages = 65536

// readerMmapBytes is how much of the database file each reading
// connection maps into memory (SQLite's own ceiling is 2 GiB). Reads of a
// mapped page are memory accesses instead of a pread(2) copying it into
// the connection's page cache: at a million paths (a 1.9 GiB file, far
// more than the 2 MiB page cache of a connection) a narinfo lookup made
// two to three such copies. The pages are the kernel's page cache, shared
// by every connection and process, not memory of this process's heap.
const readerMmapBytes = 2 << 30

// writerDriver is go-sqlite3 with the settings of the writing connection
// that its DSN cannot carry, applied to every connection it opens;
// readerDriver likewise for the reading connections.
const (
	writerDriver = "sqlite3-cached-writer"
	readerDriver = "sqlite3-cached-reader"
)

func init() {
	sql.Register(writerDriver, &sqlite3.SQLiteDriver{
		ConnectHook: func(c *sqlite3.SQLiteConn) error {
			_, err := c.Exec(fmt.Sprintf(`PRAGMA wal_autocheckpoint = %d`, walCheckpointPages), nil)
			return err
		},
	})
	sql.Register(readerDriver, &sqlite3.SQLiteDriver{
		ConnectHook: func(c *sqlite3.SQLiteConn) error {
			_, err := c.Exec(fmt.Sprintf(`PRAGMA mmap_size = %d`, readerMmapBytes), nil)
			return err
		},
	})
}

// Catalog is a catalog.Catalog stored in one SQLite database file.
type Catalog struct {
	path    string
	writer  *sql.DB   // exactly one connection; BEGIN IMMEDIATE transactions
	reader  *sql.DB   // a few query-only connections
	narInfo *sql.Stmt // the hot path, prepared once on the reader pool
	group   groupCommit
	locks   fileLocks
}

var _ catalog.Catalog = (*Catalog)(nil)

// Open opens (creating if needed) the SQLite catalog at path, applies
// pending migrations and returns it ready for use.
func Open(ctx context.Context, path string) (*Catalog, error) {
	if path == "" {
		return nil, errors.New("sqlite catalog: open: empty database path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite catalog: open %s: %w", path, err)
	}
	c := &Catalog{path: abs}
	if err := c.open(ctx); err != nil {
		c.Close() //nolint:errcheck // the open error is the one that matters
		return nil, err
	}
	return c, nil
}

func (c *Catalog) open(ctx context.Context) error {
	var err error
	c.writer, err = sql.Open(writerDriver, dsn(c.path, url.Values{
		"_txlock":          {"immediate"},
		"_synchronous":     {"FULL"},
		"_foreign_keys":    {"1"},
		"_busy_timeout":    {fmt.Sprint(busyTimeout.Milliseconds())},
		"_stmt_cache_size": {fmt.Sprint(stmtCacheSize)},
		"_cache_size":      {fmt.Sprint(-writerCacheKiB)},
	}))
	if err != nil {
		return fmt.Errorf("sqlite catalog: open %s: %w", c.path, err)
	}
	c.writer.SetMaxOpenConns(1)
	c.writer.SetMaxIdleConns(1)
	c.writer.SetConnMaxLifetime(0)
	c.writer.SetConnMaxIdleTime(0)
	if err := c.writer.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite catalog: open %s: %w", c.path, err)
	}
	if err := enableWAL(ctx, c.writer); err != nil {
		return fmt.Errorf("sqlite catalog: open %s: %w", c.path, err)
	}
	if err := migrate(ctx, c.writer); err != nil {
		return fmt.Errorf("sqlite catalog: open %s: %w", c.path, err)
	}

	c.reader, err = sql.Open(readerDriver, dsn(c.path, url.Values{
		"_txlock":          {"deferred"},
		"_query_only":      {"1"},
		"_foreign_keys":    {"1"},
		"_busy_timeout":    {fmt.Sprint(busyTimeout.Milliseconds())},
		"_stmt_cache_size": {fmt.Sprint(stmtCacheSize)},
	}))
	if err != nil {
		return fmt.Errorf("sqlite catalog: open %s: %w", c.path, err)
	}
	readers := max(4, runtime.GOMAXPROCS(0))
	c.reader.SetMaxOpenConns(readers)
	c.reader.SetMaxIdleConns(readers)
	c.reader.SetConnMaxLifetime(0)
	c.reader.SetConnMaxIdleTime(0)
	c.narInfo, err = c.reader.PrepareContext(ctx, `SELECT narinfo FROM paths WHERE hash_part = ?
		AND NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.hash_part = paths.hash_part)`)
	if err != nil {
		return fmt.Errorf("sqlite catalog: open %s: preparing narinfo query: %w", c.path, err)
	}
	return nil
}

// enableWAL switches the database to WAL mode, which it then keeps. The
// switch needs an exclusive lock and SQLite refuses it at once, without
// waiting, when another process is switching too, so it is retried until
// busyTimeout has passed.
func enableWAL(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(busyTimeout)
	for delay := time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		var mode string
		err := db.QueryRowContext(ctx, `PRAGMA journal_mode = WAL`).Scan(&mode)
		if err == nil && mode == "wal" {
			return nil
		}
		if err == nil {
			return fmt.Errorf("%w: journal mode is %q", ErrNoWAL, mode)
		}
		var se sqlite3.Error
		if !errors.As(err, &se) || se.Code != sqlite3.ErrBusy || time.Now().After(deadline) {
			return fmt.Errorf("%w: %w", ErrNoWAL, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrNoWAL, ctx.Err())
		case <-time.After(delay):
		}
	}
}

// dsn is the go-sqlite3 data source name of the database file at path
// with the given driver options, as a file: URI so any path is safe.
func dsn(path string, opts url.Values) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: opts.Encode()}
	return u.String()
}

// Close closes both database handles.
func (c *Catalog) Close() error {
	c.closeLocks()
	var errs []error
	if c.narInfo != nil {
		errs = append(errs, c.narInfo.Close())
	}
	if c.reader != nil {
		errs = append(errs, c.reader.Close())
	}
	if c.writer != nil {
		errs = append(errs, c.writer.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlite catalog: close %s: %w", c.path, err)
	}
	return nil
}

// write runs fn in one immediate write transaction and commits it when fn
// returns nil.
func (c *Catalog) write(ctx context.Context, fn func(*sql.Tx) error) error {
	return inTx(ctx, c.writer, fn)
}

// inTx runs fn in a transaction begun on db (a pool or one connection)
// and commits it when fn returns nil.
func inTx(ctx context.Context, db interface {
	BeginTx(context.Context, *sql.TxOptions) (*sql.Tx, error)
}, fn func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback() //nolint:errcheck // fn's error is the one that matters
		return err
	}
	return tx.Commit()
}

// writeLazy is write for a record that need not survive a power failure
// by itself (BeginNAR, PutNAR): the commit does not wait for the disk
// (synchronous=NORMAL; in WAL mode it is still atomic, and survives a
// crash of the process), and the next durable commit, the Publish that
// claims the NAR, makes it durable with its own fsync of the WAL. A
// power failure in between loses what no client was promised: Nix
// uploads the NAR again with its narinfo.
func (c *Catalog) writeLazy(ctx context.Context, fn func(*sql.Tx) error) error {
	conn, err := c.writer.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA synchronous = NORMAL`); err != nil {
		return err
	}
	defer func() {
		// Durable again before the connection serves another write; a
		// connection that cannot be put back is thrown away.
		if _, err := conn.ExecContext(context.WithoutCancel(ctx), `PRAGMA synchronous = FULL`); err != nil {
			conn.Raw(func(any) error { return driver.ErrBadConn }) //nolint:errcheck // discards the connection
		}
	}()
	return inTx(ctx, conn, fn)
}

// read runs fn in one read transaction on the reader pool, so that all its
// queries see the same snapshot.
func (c *Catalog) read(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := c.reader.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // read-only: nothing to keep
	return fn(tx)
}

// notFound maps sql.ErrNoRows to catalog.ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return catalog.ErrNotFound
	}
	return err
}
