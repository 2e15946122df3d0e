package postgres

import (
	"context"
	"embed"
	"fmt"
	"slices"
	"time"

	mig "github.com/nix-cached/cached/catalog/internal/migration"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLock is the key of the advisory lock that serialises
// migrations: the bytes "cached", then 0x0001.
const migrationLock int64 = 0x6361636865640001

// migration is one numbered schema change, "migrations/NNNN_name.sql".
type migration = mig.Migration

// loadMigrations returns the embedded migrations in ascending order.
func loadMigrations() ([]migration, error) {
	ms, err := mig.Load(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMigration, err)
	}
	return ms, nil
}

// migrate applies the pending migrations in one transaction holding an
// advisory lock, so that replicas starting together apply each exactly
// once. It refuses a database that records migrations this binary does not
// have.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return migrateTo(ctx, pool, 0)
}

// migrateTo is migrate applying only the migrations numbered up to last
// (all of them when last is 0), so that tests can build old databases.
func migrateTo(ctx context.Context, pool *pgxpool.Pool, last int) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	// READ COMMITTED whatever the database's default, so that what the
	// migrations table says is read after the lock is taken.
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrMigration, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after Commit
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
		return fmt.Errorf("%w: waiting for other migrations: %w", ErrMigration, err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer PRIMARY KEY,
		name       text    NOT NULL,
		applied_at bigint  NOT NULL
	)`); err != nil {
		return fmt.Errorf("%w: creating schema_migrations: %w", ErrMigration, err)
	}
	rows, err := tx.Query(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		return fmt.Errorf("%w: reading schema_migrations: %w", ErrMigration, err)
	}
	applied, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return fmt.Errorf("%w: reading schema_migrations: %w", ErrMigration, err)
	}
	var unknown []int
	for _, v := range applied {
		if !slices.ContainsFunc(ms, func(m migration) bool { return m.Version == v }) {
			unknown = append(unknown, v)
		}
	}
	if len(unknown) > 0 {
		return fmt.Errorf("%w: it has migrations %v, this binary knows up to %d",
			ErrSchemaTooNew, unknown, ms[len(ms)-1].Version)
	}
	for _, m := range ms {
		if slices.Contains(applied, m.Version) || (last > 0 && m.Version > last) {
			continue
		}
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return fmt.Errorf("%w: applying %s: %w", ErrMigration, m.Name, err)
		}
		if _, err := tx.Exec(ctx,
			`INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
			m.Version, m.Name, time.Now().UnixMilli()); err != nil {
			return fmt.Errorf("%w: recording %s: %w", ErrMigration, m.Name, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("%w: commit: %w", ErrMigration, err)
	}
	return nil
}
