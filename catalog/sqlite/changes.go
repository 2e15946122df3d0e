package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/catalog/internal/deletion"
)

// recordChange adds hashPart to the narinfo change log inside tx, the
// transaction that publishes, replaces or deletes it. The write lock tx
// holds makes seq order commit order.
func recordChange(ctx context.Context, tx *sql.Tx, hashPart string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO narinfo_changes (hash_part, at) VALUES (?, ?)`,
		hashPart, time.Now().UnixMilli())
	return err
}

// recordChanges is recordChange for the hash parts of a JSON array.
func recordChanges(ctx context.Context, tx *sql.Tx, hashParts string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO narinfo_changes (hash_part, at)
		SELECT value, ? FROM json_each(?)`, time.Now().UnixMilli(), hashParts)
	return err
}

// Changes returns up to limit entries of the change log with Seq > after,
// in Seq order, from the reader pool: pollers call it often and must not
// wait for writers.
func (c *Catalog) Changes(ctx context.Context, after int64, limit int) ([]catalog.Change, error) {
	rows, err := c.reader.QueryContext(ctx, `SELECT seq, hash_part FROM narinfo_changes
		WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite catalog: changes after %d: %w", after, err)
	}
	defer rows.Close()
	var out []catalog.Change
	for rows.Next() {
		var ch catalog.Change
		if err := rows.Scan(&ch.Seq, &ch.HashPart); err != nil {
			return nil, fmt.Errorf("sqlite catalog: changes after %d: %w", after, err)
		}
		out = append(out, ch)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite catalog: changes after %d: %w", after, err)
	}
	return out, nil
}

// LastChange returns the highest Seq of the change log, 0 when it is
// empty.
func (c *Catalog) LastChange(ctx context.Context) (int64, error) {
	var seq int64
	if err := c.reader.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM narinfo_changes`).
		Scan(&seq); err != nil {
		return 0, fmt.Errorf("sqlite catalog: last change: %w", err)
	}
	return seq, nil
}

// PruneChanges removes the change log entries recorded before before and
// returns how many went.
func (c *Catalog) PruneChanges(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := c.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM narinfo_changes WHERE at < ?`, before.UnixMilli())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite catalog: prune changes before %s: %w", before.Format(deletion.TimeFormat), err)
	}
	return n, nil
}
