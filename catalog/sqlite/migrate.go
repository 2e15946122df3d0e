package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one numbered schema change, "migrations/NNNN_name.sql".
type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations returns the embedded migrations in ascending order.
func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("%w: reading embedded migrations: %w", ErrMigration, err)
	}
	var ms []migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(strings.TrimSuffix(name, ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("%w: migration file %s is not named NNNN_name.sql", ErrMigration, name)
		}
		body, err := fs.ReadFile(migrationFiles, "migrations/"+name)
		if err != nil {
			return nil, fmt.Errorf("%w: reading %s: %w", ErrMigration, name, err)
		}
		ms = append(ms, migration{version: v, name: name, sql: string(body)})
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("%w: no embedded migrations", ErrMigration)
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("%w: %s and %s share a number", ErrMigration, ms[i-1].name, ms[i].name)
		}
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
		if !slices.ContainsFunc(ms, func(m migration) bool { return m.version == v }) {
			unknown = append(unknown, v)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return fmt.Errorf("%w: it has migrations %v, this binary knows up to %d",
			ErrSchemaTooNew, unknown, ms[len(ms)-1].version)
	}
	for _, m := range ms {
		if applied[m.version] || (last > 0 && m.version > last) {
			continue
		}
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("%w: applying %s: %w", ErrMigration, m.name, err)
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			m.version, m.name, time.Now().UnixMilli()); err != nil {
			return fmt.Errorf("%w: recording %s: %w", ErrMigration, m.name, err)
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
