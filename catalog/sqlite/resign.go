package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/nix-cached/cached/catalog"
)

// ReplaceNarInfo replaces a published path's narinfo by new if it is still
// old, and records the path in the change log, in one write transaction:
// the write lock orders it with every Publish of the path.
func (c *Catalog) ReplaceNarInfo(ctx context.Context, hashPart, old, new string) error {
	err := c.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE paths SET narinfo = ? WHERE hash_part = ? AND narinfo = ?`,
			new, hashPart, old)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			var one int
			err := tx.QueryRowContext(ctx, `SELECT 1 FROM paths WHERE hash_part = ?`, hashPart).Scan(&one)
			if err != nil {
				return notFound(err)
			}
			return catalog.ErrNarInfoChanged
		}
		return recordChange(ctx, tx, hashPart)
	})
	if err != nil {
		return fmt.Errorf("sqlite catalog: replace narinfo of %s: %w", hashPart, err)
	}
	return nil
}

// NarInfosAfter returns up to limit paths whose hash part sorts after
// after, in hash-part order, with their narinfos.
func (c *Catalog) NarInfosAfter(ctx context.Context, after string, limit int) ([]catalog.StoredNarInfo, error) {
	rows, err := c.reader.QueryContext(ctx, `SELECT hash_part, narinfo FROM paths
		WHERE hash_part > ? ORDER BY hash_part LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite catalog: narinfos after %q: %w", after, err)
	}
	defer rows.Close()
	var out []catalog.StoredNarInfo
	for rows.Next() {
		var ni catalog.StoredNarInfo
		if err := rows.Scan(&ni.HashPart, &ni.NarInfo); err != nil {
			return nil, fmt.Errorf("sqlite catalog: narinfos after %q: %w", after, err)
		}
		out = append(out, ni)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite catalog: narinfos after %q: %w", after, err)
	}
	return out, nil
}

// ResignState returns the state of re-signing.
func (c *Catalog) ResignState(ctx context.Context) (catalog.ResignState, error) {
	s, err := catalog.ScanResignState(c.reader.QueryRowContext(ctx,
		`SELECT `+catalog.ResignStateColumns+` FROM resign_state WHERE id = 1`).Scan)
	if errors.Is(err, sql.ErrNoRows) {
		err = catalog.ErrNotFound
	}
	if err != nil {
		return catalog.ResignState{}, fmt.Errorf("sqlite catalog: resign state: %w", err)
	}
	return s, nil
}

// SaveResignState stores the state of re-signing.
func (c *Catalog) SaveResignState(ctx context.Context, s catalog.ResignState) error {
	err := c.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO resign_state (id, `+catalog.ResignStateColumns+`)
			VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET target = excluded.target, key_names = excluded.key_names,
				retired = excluded.retired, holder = excluded.holder, cursor = excluded.cursor,
				checked = excluded.checked, rewritten = excluded.rewritten, total = excluded.total,
				seq = excluded.seq, started = excluded.started, updated = excluded.updated,
				completed = excluded.completed`,
			s.Values()...)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite catalog: save resign state: %w", err)
	}
	return nil
}
