package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/nix-cached/cached/catalog"
)

// narColumns are the columns scanNAR reads, for a nars table aliased n.
const narColumns = `n.key, n.compression, n.file_hash, n.file_size, n.nar_hash, n.nar_size,
	COALESCE(n.listing_key, ''), n.created_at`

// scanNAR reads one row of narColumns.
func scanNAR(row interface{ Scan(...any) error }) (catalog.NAR, error) {
	var n catalog.NAR
	var created int64
	err := row.Scan(&n.Key, &n.Compression, &n.FileHash, &n.FileSize, &n.NarHash, &n.NarSize,
		&n.ListingKey, &created)
	n.CreatedAt = fromMillis(created)
	return n, err
}

// PutNAR records an uploaded NAR, or renews and updates the one with the
// same key, and points each alias at it.
func (c *Catalog) PutNAR(ctx context.Context, n catalog.NAR, aliases ...string) error {
	err := c.write(ctx, func(tx *sql.Tx) error {
		var id int64
		err := tx.QueryRowContext(ctx, `INSERT INTO nars
			(key, compression, file_hash, file_size, nar_hash, nar_size, listing_key, created_at)
			VALUES (?, ?, ?, ?, ?, ?, NULLIF(?, ''), ?)
			ON CONFLICT (key) DO UPDATE SET
				compression = excluded.compression,
				file_hash = excluded.file_hash,
				file_size = excluded.file_size,
				nar_hash = excluded.nar_hash,
				nar_size = excluded.nar_size,
				listing_key = excluded.listing_key,
				created_at = excluded.created_at
			RETURNING id`,
			n.Key, n.Compression, n.FileHash, n.FileSize, n.NarHash, n.NarSize, n.ListingKey,
			millis(n.CreatedAt)).Scan(&id)
		if err != nil {
			return err
		}
		for _, a := range aliases {
			if a == n.Key {
				continue
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO nar_aliases (name, nar_id) VALUES (?, ?)
				ON CONFLICT (name) DO UPDATE SET nar_id = excluded.nar_id`, a, id); err != nil {
				return fmt.Errorf("alias %s: %w", a, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite catalog: put NAR %s: %w", n.Key, err)
	}
	return nil
}

// LookupNAR finds a NAR by its key or, failing that, by one of its aliases.
func (c *Catalog) LookupNAR(ctx context.Context, name string) (catalog.NAR, error) {
	row := c.reader.QueryRowContext(ctx, `SELECT `+narColumns+` FROM (
			SELECT 0 AS rank, id FROM nars WHERE key = ?
			UNION ALL
			SELECT 1 AS rank, nar_id FROM nar_aliases WHERE name = ?
		) m JOIN nars n ON n.id = m.id
		ORDER BY m.rank LIMIT 1`, name, name)
	n, err := scanNAR(row)
	if err != nil {
		return catalog.NAR{}, fmt.Errorf("sqlite catalog: lookup NAR %s: %w", name, notFound(err))
	}
	return n, nil
}

// UnclaimedNARs lists the NARs no published path names whose CreatedAt is
// before the given time, oldest first.
func (c *Catalog) UnclaimedNARs(ctx context.Context, before time.Time) ([]catalog.NAR, error) {
	rows, err := c.reader.QueryContext(ctx, `SELECT `+narColumns+` FROM nars n
		WHERE n.created_at < ? AND NOT EXISTS (SELECT 1 FROM paths p WHERE p.nar_id = n.id)
		ORDER BY n.created_at, n.key`, before.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("sqlite catalog: unclaimed NARs: %w", err)
	}
	defer rows.Close()
	var nars []catalog.NAR
	for rows.Next() {
		n, err := scanNAR(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite catalog: unclaimed NARs: %w", err)
		}
		nars = append(nars, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite catalog: unclaimed NARs: %w", err)
	}
	return nars, nil
}

// DeleteUnclaimedNAR removes the NAR with this key and its aliases if, at
// the time of the delete, no path names it and it is older than before.
func (c *Catalog) DeleteUnclaimedNAR(ctx context.Context, key string, before time.Time) (bool, error) {
	var removed bool
	err := c.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM nars
			WHERE key = ? AND created_at < ?
			AND NOT EXISTS (SELECT 1 FROM paths p WHERE p.nar_id = nars.id)`,
			key, before.UnixMilli())
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		removed = n > 0
		return err
	})
	if err != nil {
		return false, fmt.Errorf("sqlite catalog: delete unclaimed NAR %s: %w", key, err)
	}
	return removed, nil
}

// BlobInUse reports whether key is the Key or ListingKey of a recorded NAR.
func (c *Catalog) BlobInUse(ctx context.Context, key string) (bool, error) {
	var used bool
	err := c.reader.QueryRowContext(ctx, `SELECT
		EXISTS (SELECT 1 FROM nars WHERE key = ?) OR EXISTS (SELECT 1 FROM nars WHERE listing_key = ?)`,
		key, key).Scan(&used)
	if err != nil {
		return false, fmt.Errorf("sqlite catalog: blob in use %s: %w", key, err)
	}
	return used, nil
}
