package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"slices"
	"time"

	mig "github.com/nix-cached/cached/catalog/internal/migration"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

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

// migrate applies the pending migrations in one immediate transaction, so
// that processes starting together apply each exactly once. It refuses a
// database that records migrations this binary does not have.
func migrate(ctx context.Context, db *sql.DB) error {
	return migrateTo(ctx, db, 0)
}

// migrateTo is migrate applying only the migrations numbered up to last
// (all of them when last is 0), so that tests can build old databases.
func migrateTo(ctx context.Context, db *sql.DB, last int) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil) // BEGIN IMMEDIATE: takes the write lock now
	if err != nil {
		return fmt.Errorf("%w: %w", ErrMigration, err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at INTEGER NOT NULL
	)`); err != nil {
		return fmt.Errorf("%w: creating schema_migrations: %w", ErrMigration, err)
	}
	applied, err := appliedVersions(ctx, tx)
	if err != nil {
		return err
	}
	var unknown []int
	for v := range applied {
		if !slices.ContainsFunc(ms, func(m migration) bool { return m.Version == v }) {
			unknown = append(unknown, v)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return fmt.Errorf("%w: it has migrations %v, this binary knows up to %d",
			ErrSchemaTooNew, unknown, ms[len(ms)-1].Version)
	}
	for _, m := range ms {
		if applied[m.Version] || (last > 0 && m.Version > last) {
			continue
		}
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return fmt.Errorf("%w: applying %s: %w", ErrMigration, m.Name, err)
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			m.Version, m.Name, time.Now().UnixMilli()); err != nil {
			return fmt.Errorf("%w: recording %s: %w", ErrMigration, m.Name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%w: commit: %w", ErrMigration, err)
	}
	return nil
}

// appliedVersions reads the set of migration numbers already applied.
func appliedVersions(ctx context.Context, tx *sql.Tx) (map[int]bool, error) {
	rows, err := tx.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("%w: reading schema_migrations: %w", ErrMigration, err)
	}
	defer rows.Close()
	applied := map[int]bool{}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("%w: reading schema_migrations: %w", ErrMigration, err)
		}
		applied[v] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%w: reading schema_migrations: %w", ErrMigration, err)
	}
	return applied, nil
}
