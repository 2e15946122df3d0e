package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/nix-cached/cached/catalog"
)

// ReplaceNarInfo replaces a published path's narinfo by new if it is still
// old, and records the path in the change log. The UPDATE locks the path's
// row as Publish does (FOR NO KEY UPDATE), so the two take turns, and a
// narinfo a Publish committed meanwhile fails the comparison (READ
// COMMITTED evaluates it again on the row's newest version).
func (c *Catalog) ReplaceNarInfo(ctx context.Context, hashPart, old, new string) error {
	err := c.write(ctx, func(t *txn) error {
		tag, err := t.Exec(ctx, `UPDATE paths SET narinfo = $3 WHERE hash_part = $1 AND narinfo = $2`,
			hashPart, old, new)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			var one int
			if err := t.QueryRow(ctx, `SELECT 1 FROM paths WHERE hash_part = $1`, hashPart).Scan(&one); err != nil {
				return notFound(err)
			}
			return catalog.ErrNarInfoChanged
		}
		b := &pgx.Batch{}
		queueChanges(b, []string{hashPart}) // last: see queueChanges
		return t.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return fmt.Errorf("postgres catalog: replace narinfo of %s: %w", hashPart, err)
	}
	return nil
}

// NarInfosAfter returns up to limit paths whose hash part sorts after
// after, in hash-part order, with their narinfos: one statement.
func (c *Catalog) NarInfosAfter(ctx context.Context, after string, limit int) ([]catalog.StoredNarInfo, error) {
	var out []catalog.StoredNarInfo
	err := c.query(ctx, func() error {
		rows, err := c.pool.Query(ctx, `SELECT hash_part, narinfo FROM paths
			WHERE hash_part > $1 ORDER BY hash_part LIMIT $2`, after, limit)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (catalog.StoredNarInfo, error) {
			var ni catalog.StoredNarInfo
			err := r.Scan(&ni.HashPart, &ni.NarInfo)
			return ni, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres catalog: narinfos after %q: %w", after, err)
	}
	return out, nil
}

// ResignState returns the state of re-signing.
func (c *Catalog) ResignState(ctx context.Context) (catalog.ResignState, error) {
	var s catalog.ResignState
	err := c.query(ctx, func() error {
		var err error
		s, err = catalog.ScanResignState(c.pool.QueryRow(ctx,
			`SELECT `+catalog.ResignStateColumns+` FROM resign_state WHERE id = 1`).Scan)
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		err = catalog.ErrNotFound
	}
	if err != nil {
		return catalog.ResignState{}, fmt.Errorf("postgres catalog: resign state: %w", err)
	}
	return s, nil
}

// SaveResignState stores the state of re-signing.
func (c *Catalog) SaveResignState(ctx context.Context, s catalog.ResignState) error {
	err := c.write(ctx, func(t *txn) error {
		_, err := t.Exec(ctx, `INSERT INTO resign_state (id, `+catalog.ResignStateColumns+`)
			VALUES (1, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
			ON CONFLICT (id) DO UPDATE SET target = excluded.target, key_names = excluded.key_names,
				retired = excluded.retired, holder = excluded.holder, cursor = excluded.cursor,
				checked = excluded.checked, rewritten = excluded.rewritten, total = excluded.total,
				seq = excluded.seq, started = excluded.started, updated = excluded.updated,
				completed = excluded.completed`,
			s.Values()...)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres catalog: save resign state: %w", err)
	}
	return nil
}
