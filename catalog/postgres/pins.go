package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/nix-cached/cached/catalog"
)

// AddPin pins a published path under p.Name, as the name's current pin,
// keeping the newest keep of its previous pins (a negative keep is 0). An
// earlier pin of the same path under the same name is replaced, so a name
// never holds a path twice. The stored StorePath is the published one. The
// path's row stays locked until the commit, so that it cannot be deleted
// meanwhile, and so does the name, so that concurrent pins of one name
// keep exactly keep.
func (c *Catalog) AddPin(ctx context.Context, p catalog.Pin, keep int) error {
	var expires *int64
	if !p.ExpiresAt.IsZero() {
		ms := p.ExpiresAt.UnixMilli()
		expires = &ms
	}
	err := c.write(ctx, func(t *txn) error {
		var storePath string
		err := t.QueryRow(ctx, `SELECT store_path FROM paths WHERE hash_part = $1 FOR KEY SHARE`,
			p.HashPart).Scan(&storePath)
		if err != nil {
			return notFound(err)
		}
		if err := t.lock(ctx, pinLocks, false, p.Name); err != nil {
			return err
		}
		_, err = t.Exec(ctx, `WITH gone AS (DELETE FROM pins WHERE name = $1 AND hash_part = $2)
			INSERT INTO pins (name, hash_part, store_path, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5)`,
			p.Name, p.HashPart, storePath, catalog.Millis(p.CreatedAt), expires)
		if err != nil {
			return err
		}
		_, err = t.Exec(ctx, `DELETE FROM pins WHERE name = $1 AND seq NOT IN
			(SELECT seq FROM pins WHERE name = $1 ORDER BY seq DESC LIMIT $2)`,
			p.Name, max(keep, 0)+1)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres catalog: pin %s as %s: %w", p.HashPart, p.Name, err)
	}
	return nil
}

// Pins lists every pin, ordered by name, newest first within a name.
func (c *Catalog) Pins(ctx context.Context) ([]catalog.Pin, error) {
	var pins []catalog.Pin
	err := c.query(ctx, func() error {
		rows, err := c.pool.Query(ctx, `SELECT name, hash_part, store_path, created_at, expires_at,
			seq = max(seq) OVER (PARTITION BY name)
			FROM pins ORDER BY name, seq DESC`)
		if err != nil {
			return err
		}
		pins, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (catalog.Pin, error) {
			var p catalog.Pin
			var created int64
			var expires *int64
			err := r.Scan(&p.Name, &p.HashPart, &p.StorePath, &created, &expires, &p.Current)
			p.CreatedAt = catalog.FromMillis(created)
			if expires != nil {
				p.ExpiresAt = catalog.FromMillis(*expires)
			}
			return p, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres catalog: pins: %w", err)
	}
	return pins, nil
}

// RemovePin removes every pin of a name.
func (c *Catalog) RemovePin(ctx context.Context, name string) error {
	var removed int64
	err := c.write(ctx, func(t *txn) error {
		tag, err := t.Exec(ctx, `DELETE FROM pins WHERE name = $1`, name)
		removed = tag.RowsAffected()
		return err
	})
	if err == nil && removed == 0 {
		err = catalog.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("postgres catalog: remove pin %s: %w", name, err)
	}
	return nil
}
