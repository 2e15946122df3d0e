// Package postgres is the PostgreSQL implementation of catalog.Catalog, for
// several `cached serve` replicas sharing one database through pgxpool.
//
// Write transactions run at READ COMMITTED (whatever the database's
// default) and take explicit locks before the reads their decisions depend
// on, so that each later statement sees what the transactions they waited
// for committed:
//   - a published path's row: DeletePath locks it FOR UPDATE before it
//     looks for referrers and pins and reads its times; Publish locks the
//     paths it references, and AddPin the path it pins, FOR KEY SHARE, so
//     a reference or pin and the deletion of its target never interleave.
//     RecordUse and DeletePaths lock rows in hash-part order, so that
//     batches from several replicas do not deadlock. Quarantine locks the
//     paths it hides FOR UPDATE, so that none gains a referrer, is
//     published again or goes until it commits (quarantine.go).
//   - a blob key (a NAR's Key or ListingKey): a transaction-scoped
//     advisory lock, exclusive for every change of a NAR record's state
//     (BeginNAR, PutNAR, MarkNARDeleting, DeletePath when it frees a NAR)
//     and shared for Publish, which needs the NAR to stay ready. A record's
//     ListingKey only changes under the lock of its Key. Path rows are
//     always locked before blob keys. A DeletePaths batch holds up to two
//     advisory locks per path: keep batches to hundreds of paths
//     (max_locks_per_transaction). Quarantine marks a NAR under its
//     exclusive lock too, taken after the paths' rows it found first (the
//     paths it finds later it locks after it), so that a Publish naming
//     the NAR either comes first, its path hidden with the rest, or sees
//     the mark.
//   - the change log: every transaction that publishes, deletes or hides
//     paths ends by taking LOCK TABLE narinfo_changes IN EXCLUSIVE MODE,
//     after every other lock, and holds it only to insert its log rows
//     and commit, so that log order is commit order (changes.go).
//
// Deadlocks (40P01), serialization failures (40001) and connection
// failures before a commit was sent are retried a few times; a lost
// connection also resets the pool, whose other idle connections a server
// restart broke too. Independent statements of a call are pipelined:
// Publish takes four round trips and DeletePaths (of any number of paths)
// five. WalkPaths and WalkGraph read in keyset-paginated batches, one
// statement each, and hold no connection while their callback runs.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	neturl "net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/nix-cached/cached/catalog"
)

var (
	// ErrSchemaTooNew is returned by Open when the database carries
	// migrations this binary does not know, i.e. a newer cached wrote it.
	ErrSchemaTooNew = errors.New("postgres catalog: database schema is newer than this binary")
	// ErrMigration is returned by Open when the schema could not be brought
	// up to date.
	ErrMigration = errors.New("postgres catalog: migration failed")
	// ErrInvalidURL is returned by Open for a database URL it cannot parse.
	ErrInvalidURL = errors.New("postgres catalog: invalid database URL")
	// ErrInvalid is returned for arguments no call can satisfy, such as an
	// empty lock holder or unordered Stats ages.
	ErrInvalid = errors.New("postgres catalog: invalid argument")
)

// maxAttempts bounds how often a transaction is tried when it fails in a
// way that retrying can fix. Tests set it to 1 to see every failure.
var maxAttempts = 5

// Catalog is a catalog.Catalog stored in a PostgreSQL database.
type Catalog struct {
	pool  *pgxpool.Pool
	name  string // user@host:port/database, for messages; never the password
	locks sessionLocks
}

var _ catalog.Catalog = (*Catalog)(nil)

// Open connects to the database at url
// ("postgres://user:pass@host:port/db?sslmode=disable"; pgxpool's pool_*
// parameters apply), applies pending migrations and returns the catalog
// ready for use. Errors never contain the password.
func Open(ctx context.Context, url string) (*Catalog, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, invalidURL(url, err)
	}
	password := cfg.ConnConfig.Password
	c := &Catalog{name: fmt.Sprintf("%s@%s:%d/%s", cfg.ConnConfig.User, cfg.ConnConfig.Host,
		cfg.ConnConfig.Port, cfg.ConnConfig.Database)}
	if err := c.open(ctx, cfg); err != nil {
		c.Close() //nolint:errcheck // the open error is the one that matters
		return nil, scrub(fmt.Errorf("postgres catalog: open %s: %w", c.name, withoutConfig(err)), password)
	}
	return c, nil
}

func (c *Catalog) open(ctx context.Context, cfg *pgxpool.Config) error {
	var err error
	if c.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return err
	}
	if err := c.pool.Ping(ctx); err != nil {
		return err
	}
	return migrate(ctx, c.pool)
}

// Close closes the connection pool.
func (c *Catalog) Close() error {
	c.closeLocks()
	if c.pool != nil {
		c.pool.Close()
	}
	return nil
}

// invalidURL describes why pgx could not parse s, without the passwords
// it holds: pgx redacts them only on a best-effort basis, so its message
// is shown only when s parses as a URL and its passwords can be cut out.
func invalidURL(s string, err error) error {
	u, perr := neturl.Parse(s)
	if perr != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return fmt.Errorf("%w: it is not a postgres:// URL (not shown: it may hold a password)", ErrInvalidURL)
	}
	var secrets []string
	if pw, ok := u.User.Password(); ok {
		secrets = append(secrets, pw)
	}
	for k, vs := range u.Query() {
		if strings.Contains(strings.ToLower(k), "password") {
			secrets = append(secrets, vs...)
		}
	}
	// Only the text: pgx's error keeps the URL as it was given.
	err = fmt.Errorf("%w: %s", ErrInvalidURL, err.Error())
	for _, pw := range secrets {
		for _, form := range []string{pw, neturl.QueryEscape(pw), neturl.PathEscape(pw)} {
			err = scrub(err, form)
		}
	}
	return err
}

// scrubbedError is an error whose message has a secret cut out.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// scrub returns err with every occurrence of secret in its message
// replaced, keeping it for errors.Is and errors.As.
func scrub(err error, secret string) error {
	if secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return &scrubbedError{msg: strings.ReplaceAll(err.Error(), secret, "xxxxx"), err: err}
}

// connectError stands for a *pgconn.ConnectError, whose Config holds the
// password: it keeps the message and the cause (a dial error or the
// server's answer), not the configuration.
type connectError struct {
	msg   string
	cause error
}

func (e *connectError) Error() string { return e.msg }
func (e *connectError) Unwrap() error { return e.cause }

// SafeToRetry reports true: no connection, so nothing was sent.
func (e *connectError) SafeToRetry() bool { return true }

// withoutConfig replaces err by a *connectError when it wraps a
// *pgconn.ConnectError.
func withoutConfig(err error) error {
	var ce *pgconn.ConnectError
	if !errors.As(err, &ce) {
		return err
	}
	return &connectError{msg: err.Error(), cause: ce.Unwrap()}
}

// errRetry makes write run its transaction again from the start.
var errRetry = errors.New("postgres catalog: changed concurrently")

// write runs fn in a READ COMMITTED transaction and commits it when fn
// returns nil, trying again when the failure is a deadlock, a
// serialization failure, errRetry, or a lost connection before the commit
// was sent.
func (c *Catalog) write(ctx context.Context, fn func(*txn) error) error {
	return c.retry(ctx, func() (bool, error) {
		committing := false
		// READ COMMITTED whatever the database's default: each statement
		// must see what the transactions it waited for committed.
		opts := pgx.TxOptions{IsoLevel: pgx.ReadCommitted}
		err := pgx.BeginTxFunc(ctx, c.pool, opts, func(tx pgx.Tx) error {
			if err := fn(&txn{Tx: tx}); err != nil {
				return err
			}
			committing = true
			return nil
		})
		return committing, err
	})
}

// read runs fn in a read-only REPEATABLE READ transaction, so that all its
// queries see one snapshot.
func (c *Catalog) read(ctx context.Context, fn func(pgx.Tx) error) error {
	return c.retry(ctx, func() (bool, error) {
		opts := pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}
		return false, pgx.BeginTxFunc(ctx, c.pool, opts, fn)
	})
}

// query runs one read-only statement, retried like read.
func (c *Catalog) query(ctx context.Context, fn func() error) error {
	return c.retry(ctx, func() (bool, error) { return false, fn() })
}

// retry calls try until it succeeds, fails for good or maxAttempts is
// reached. try reports whether it had begun to commit, after which a lost
// connection leaves the outcome unknown and is not retried.
func (c *Catalog) retry(ctx context.Context, try func() (bool, error)) error {
	for attempt := 1; ; attempt++ {
		committing, err := try()
		if err == nil {
			return nil
		}
		err = withoutConfig(err)
		if ctxErr := ctx.Err(); ctxErr != nil {
			if errors.Is(err, ctxErr) {
				return err
			}
			return fmt.Errorf("%w: %w", ctxErr, err)
		}
		if attempt == maxAttempts || !retryable(err, committing) {
			return err
		}
		if isConnectionError(err) {
			// The server restarted or the network failed: the pool's
			// other idle connections are most likely broken too.
			c.pool.Reset()
		}
		delay := time.Duration(rand.Int64N(int64(time.Millisecond) << attempt))
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ctx.Err(), err)
		case <-time.After(delay):
		}
	}
}

// retryable reports whether a failed transaction may be run again.
func retryable(err error, committing bool) bool {
	if errors.Is(err, errRetry) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "40001", "40P01": // serialization_failure, deadlock_detected
			return true
		}
		return false
	}
	if pgconn.SafeToRetry(err) {
		return true
	}
	// A connection lost before COMMIT was sent rolled the work back.
	return !committing && isConnectionError(err)
}

// isConnectionError reports whether err is a failure of the connection
// to the server (pgconn's errors say whether retrying is safe) rather
// than an answer of the server or a refusal of the catalog.
func isConnectionError(err error) bool {
	var conn interface{ SafeToRetry() bool }
	var ne net.Error
	return errors.As(err, &conn) || errors.As(err, &ne) || errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

// notFound maps pgx.ErrNoRows to catalog.ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return catalog.ErrNotFound
	}
	return err
}
