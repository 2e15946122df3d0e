package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/nix-cached/cached/catalog"
)

// narColumns are the columns scanNAR reads, for a nars table aliased n.
const narColumns = `n.key, n.compression, n.file_hash, n.file_size, n.nar_hash, n.nar_size,
	COALESCE(n.listing_key, ''), n.created_at, n.quarantined_at IS NOT NULL`

// narReturning are narColumns for a RETURNING clause, which cannot name
// the table.
const narReturning = `key, compression, file_hash, file_size, nar_hash, nar_size,
	COALESCE(listing_key, ''), created_at, quarantined_at IS NOT NULL`

// scanNAR reads one row of narColumns or narReturning.
func scanNAR(row interface{ Scan(...any) error }) (catalog.NAR, error) {
	var n catalog.NAR
	var created int64
	err := row.Scan(&n.Key, &n.Compression, &n.FileHash, &n.FileSize, &n.NarHash, &n.NarSize,
		&n.ListingKey, &created, &n.Quarantined)
	n.CreatedAt = catalog.FromMillis(created)
	return n, err
}

// scanNARs reads every row of narColumns.
func scanNARs(rows *sql.Rows) ([]catalog.NAR, error) {
	defer rows.Close()
	var nars []catalog.NAR
	for rows.Next() {
		n, err := scanNAR(rows)
		if err != nil {
			return nil, err
		}
		nars = append(nars, n)
	}
	return nars, rows.Err()
}

// checkNotDeleting fails with catalog.ErrBusy when a record whose key or
// listing key is key or listingKey is being deleted.
func checkNotDeleting(ctx context.Context, tx *sql.Tx, key, listingKey string) error {
	var busy string
	err := tx.QueryRowContext(ctx, `SELECT key FROM nars
		WHERE state = 'deleting' AND (key IN (?, ?) OR listing_key IN (?, ?)) LIMIT 1`,
		key, listingKey, key, listingKey).Scan(&busy)
	switch {
	case err == nil:
		return fmt.Errorf("%w: the record of %s is being deleted", catalog.ErrBusy, busy)
	case errors.Is(err, sql.ErrNoRows):
		return nil
	default:
		return err
	}
}

// BeginNAR records a pending NAR for an upload about to put blobs at key
// and listingKey, or, when key is recorded, moves its CreatedAt forward to
// at and counts the upload so that DeletePath leaves the NAR alone until
// PutNAR records it. It fails with catalog.ErrBusy while either key is
// being deleted.
func (c *Catalog) BeginNAR(ctx context.Context, key, listingKey string, at time.Time) error {
	err := c.writeLazy(ctx, func(tx *sql.Tx) error {
		if err := checkNotDeleting(ctx, tx, key, listingKey); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO nars
			(key, compression, file_hash, file_size, nar_hash, nar_size, listing_key, created_at,
			 state, uploads)
			VALUES (?, '', '', 0, '', 0, NULLIF(?, ''), ?, 'pending', 1)
			ON CONFLICT (key) DO UPDATE SET
				created_at = max(nars.created_at, excluded.created_at),
				uploads = nars.uploads + 1`,
			key, listingKey, catalog.Millis(at))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite catalog: begin NAR %s: %w", key, err)
	}
	return nil
}

// PutNAR records an uploaded NAR as ready, or renews and updates the one
// with the same key, and points each alias at it. It fails with
// catalog.ErrBusy while its key or listing key is being deleted.
func (c *Catalog) PutNAR(ctx context.Context, n catalog.NAR, aliases ...string) error {
	err := c.writeLazy(ctx, func(tx *sql.Tx) error {
		if err := checkNotDeleting(ctx, tx, n.Key, n.ListingKey); err != nil {
			return err
		}
		var id int64
		err := tx.QueryRowContext(ctx, `INSERT INTO nars
			(key, compression, file_hash, file_size, nar_hash, nar_size, listing_key, created_at,
			 state, uploads)
			VALUES (?, ?, ?, ?, ?, ?, NULLIF(?, ''), ?, 'ready', 0)
			ON CONFLICT (key) DO UPDATE SET
				compression = excluded.compression,
				file_hash = excluded.file_hash,
				file_size = excluded.file_size,
				nar_hash = excluded.nar_hash,
				nar_size = excluded.nar_size,
				listing_key = excluded.listing_key,
				created_at = excluded.created_at,
				state = 'ready',
				uploads = max(nars.uploads - 1, 0),
				quarantined_at = NULL,
				quarantine_reason = ''
			RETURNING id`,
			n.Key, n.Compression, n.FileHash, n.FileSize, n.NarHash, n.NarSize, n.ListingKey,
			catalog.Millis(n.CreatedAt)).Scan(&id)
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
		// A verified upload of a quarantined NAR ends its quarantine (the
		// upsert cleared it); the paths it hid are served again as each is
		// published again.
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite catalog: put NAR %s: %w", n.Key, err)
	}
	return nil
}

// LookupNAR finds a ready NAR by its key or, failing that, by one of its
// aliases.
func (c *Catalog) LookupNAR(ctx context.Context, name string) (catalog.NAR, error) {
	row := c.reader.QueryRowContext(ctx, `SELECT `+narColumns+` FROM (
			SELECT 0 AS rank, id FROM nars WHERE key = ?
			UNION ALL
			SELECT 1 AS rank, nar_id FROM nar_aliases WHERE name = ?
		) m JOIN nars n ON n.id = m.id
		WHERE n.state = 'ready'
		ORDER BY m.rank LIMIT 1`, name, name)
	n, err := scanNAR(row)
	if err != nil {
		return catalog.NAR{}, fmt.Errorf("sqlite catalog: lookup NAR %s: %w", name, notFound(err))
	}
	return n, nil
}

// UnclaimedNARs lists the ready or pending NARs no published path names
// whose CreatedAt is before the given time, oldest first.
func (c *Catalog) UnclaimedNARs(ctx context.Context, before time.Time) ([]catalog.NAR, error) {
	rows, err := c.reader.QueryContext(ctx, `SELECT `+narColumns+` FROM nars n
		WHERE n.created_at < ? AND n.state <> 'deleting'
		AND NOT EXISTS (SELECT 1 FROM paths p WHERE p.nar_id = n.id)
		ORDER BY n.created_at, n.key`, before.UnixMilli())
	var nars []catalog.NAR
	if err == nil {
		nars, err = scanNARs(rows)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite catalog: unclaimed NARs: %w", err)
	}
	return nars, nil
}

// MarkNARDeleting marks the NAR with this key deleting if no path names
// it, it is not being deleted already and it was created (or its upload
// begun) before the given time; a pending record that old is an upload
// that never finished. When no record has key as its key or listing key,
// it records a deleting placeholder for the orphan blob. It reports whether
// the caller may delete the blobs the returned NAR names; when it may not,
// the NAR is the zero value.
func (c *Catalog) MarkNARDeleting(ctx context.Context, key string, before time.Time) (catalog.NAR, bool, error) {
	var n catalog.NAR
	var marked bool
	err := c.write(ctx, func(tx *sql.Tx) error {
		var err error
		n, marked, err = markNARDeleting(ctx, tx, key, before)
		return err
	})
	if err != nil {
		return catalog.NAR{}, false, fmt.Errorf("sqlite catalog: mark NAR %s deleting: %w", key, err)
	}
	if !marked {
		return catalog.NAR{}, false, nil
	}
	return n, true, nil
}

// markNARDeleting is MarkNARDeleting inside tx.
func markNARDeleting(ctx context.Context, tx *sql.Tx, key string, before time.Time) (catalog.NAR, bool, error) {
	n, err := scanNAR(tx.QueryRowContext(ctx, `UPDATE nars AS n SET state = 'deleting'
		WHERE n.key = ? AND n.state <> 'deleting' AND n.created_at < ?
		AND NOT EXISTS (SELECT 1 FROM paths p WHERE p.nar_id = n.id)
		RETURNING `+narReturning, key, before.UnixMilli()))
	if err == nil {
		return n, true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return n, false, err
	}
	var named bool
	if err := tx.QueryRowContext(ctx, `SELECT
		EXISTS (SELECT 1 FROM nars WHERE key = ?) OR EXISTS (SELECT 1 FROM nars WHERE listing_key = ?)`,
		key, key).Scan(&named); err != nil || named {
		return catalog.NAR{}, false, err
	}
	n, err = scanNAR(tx.QueryRowContext(ctx, `INSERT INTO nars AS n
		(key, compression, file_hash, file_size, nar_hash, nar_size, listing_key, created_at, state)
		VALUES (?, '', '', 0, '', 0, NULL, ?, 'deleting')
		RETURNING `+narReturning, key, catalog.Millis(time.Time{})))
	return n, err == nil, err
}

// deletingNARsQuery lists the records marked deleting; it says
// state <> 'ready' for SQLite to use the partial index nars_unready.
const deletingNARsQuery = `SELECT ` + narColumns + ` FROM nars n
	WHERE n.state = 'deleting' AND n.state <> 'ready' ORDER BY n.key`

// DeletingNARs lists the records marked deleting, by key.
func (c *Catalog) DeletingNARs(ctx context.Context) ([]catalog.NAR, error) {
	rows, err := c.reader.QueryContext(ctx, deletingNARsQuery)
	var nars []catalog.NAR
	if err == nil {
		nars, err = scanNARs(rows)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite catalog: deleting NARs: %w", err)
	}
	return nars, nil
}

// DropNAR removes the record with this key, and its aliases, if it is
// marked deleting; a record in any other state was recorded again since and
// is left alone, and an absent one is not an error.
func (c *Catalog) DropNAR(ctx context.Context, key string) error {
	return c.DropNARs(ctx, []string{key})
}

// DropNARs removes the records marked deleting with these keys, in one
// write transaction that does not wait for the disk.
func (c *Catalog) DropNARs(ctx context.Context, keys []string) error {
	// Lazily: a drop a power failure undoes leaves records deleting,
	// which no one serves and the next collection drops again.
	err := c.writeLazy(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM nars
			WHERE key IN (SELECT value FROM json_each(?)) AND state = 'deleting'`, jsonList(keys))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite catalog: drop %d NARs: %w", len(keys), err)
	}
	return nil
}

// BlobInUse reports whether key is the key or listing key of a NAR record
// that is not being deleted.
func (c *Catalog) BlobInUse(ctx context.Context, key string) (bool, error) {
	var used bool
	err := c.reader.QueryRowContext(ctx, `SELECT
		EXISTS (SELECT 1 FROM nars WHERE key = ? AND state <> 'deleting')
		OR EXISTS (SELECT 1 FROM nars WHERE listing_key = ? AND state <> 'deleting')`,
		key, key).Scan(&used)
	if err != nil {
		return false, fmt.Errorf("sqlite catalog: blob in use %s: %w", key, err)
	}
	return used, nil
}
