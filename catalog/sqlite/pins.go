package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/nix-cached/cached/catalog"
)

// AddPin pins a published path under p.Name, as the name's current pin,
// keeping the newest keep of its previous pins (a negative keep is 0). An
// earlier pin of the same path under the same name is replaced, so a name
// never holds a path twice. The stored StorePath is the published one.
func (c *Catalog) AddPin(ctx context.Context, p catalog.Pin, keep int) error {
	var expires sql.NullInt64
	if !p.ExpiresAt.IsZero() {
		expires = sql.NullInt64{Int64: p.ExpiresAt.UnixMilli(), Valid: true}
	}
	err := c.write(ctx, func(tx *sql.Tx) error {
		var storePath string
		err := tx.QueryRowContext(ctx, `SELECT store_path FROM paths WHERE hash_part = ?`, p.HashPart).
			Scan(&storePath)
		if err != nil {
			return notFound(err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM pins WHERE name = ? AND hash_part = ?`,
			p.Name, p.HashPart); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO pins
			(name, hash_part, store_path, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
			p.Name, p.HashPart, storePath, catalog.Millis(p.CreatedAt), expires); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM pins WHERE name = ? AND seq NOT IN
			(SELECT seq FROM pins WHERE name = ? ORDER BY seq DESC LIMIT ?)`,
			p.Name, p.Name, max(keep, 0)+1)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite catalog: pin %s as %s: %w", p.HashPart, p.Name, err)
	}
	return nil
}

// Pins lists every pin, ordered by name, newest first within a name.
func (c *Catalog) Pins(ctx context.Context) ([]catalog.Pin, error) {
	rows, err := c.reader.QueryContext(ctx, `SELECT p.name, p.hash_part, p.store_path,
		p.created_at, p.expires_at,
		p.seq = (SELECT max(q.seq) FROM pins q WHERE q.name = p.name)
		FROM pins p ORDER BY p.name, p.seq DESC`)
	if err != nil {
		return nil, fmt.Errorf("sqlite catalog: pins: %w", err)
	}
	defer rows.Close()
	var pins []catalog.Pin
	for rows.Next() {
		var p catalog.Pin
		var created int64
		var expires sql.NullInt64
		if err := rows.Scan(&p.Name, &p.HashPart, &p.StorePath, &created, &expires,
			&p.Current); err != nil {
			return nil, fmt.Errorf("sqlite catalog: pins: %w", err)
		}
		p.CreatedAt = catalog.FromMillis(created)
		if expires.Valid {
			p.ExpiresAt = catalog.FromMillis(expires.Int64)
		}
		pins = append(pins, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite catalog: pins: %w", err)
	}
	return pins, nil
}

// RemovePin removes every pin of a name.
func (c *Catalog) RemovePin(ctx context.Context, name string) error {
	var removed int64
	err := c.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM pins WHERE name = ?`, name)
		if err != nil {
			return err
		}
		removed, err = res.RowsAffected()
		return err
	})
	if err == nil && removed == 0 {
		err = catalog.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("sqlite catalog: remove pin %s: %w", name, err)
	}
	return nil
}
