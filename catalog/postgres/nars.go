package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nix-cached/cached/catalog"
)

// narColumns are the columns scanNAR reads, for a nars table aliased n
// (also valid in a RETURNING clause of a statement on nars AS n).
const narColumns = `n.key, n.compression, n.file_hash, n.file_size, n.nar_hash, n.nar_size,
	COALESCE(n.listing_key, ''), n.created_at, n.quarantined_at IS NOT NULL`

// scanNAR reads one row of narColumns.
func scanNAR(row pgx.Row) (catalog.NAR, error) {
	var n catalog.NAR
	var created int64
	err := row.Scan(&n.Key, &n.Compression, &n.FileHash, &n.FileSize, &n.NarHash, &n.NarSize,
		&n.ListingKey, &created, &n.Quarantined)
	n.CreatedAt = catalog.FromMillis(created)
	return n, err
}

// collectNARs reads every row of narColumns.
func collectNARs(rows pgx.Rows, err error) ([]catalog.NAR, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (catalog.NAR, error) { return scanNAR(r) })
}

// checkNotDeleting fails with catalog.ErrBusy when a record whose key or
// listing key is key or listingKey is being deleted.
func checkNotDeleting(ctx context.Context, t *txn, key, listingKey string) error {
	var busy string
	err := t.QueryRow(ctx, `SELECT key FROM nars
		WHERE state = 'deleting' AND (key = ANY($1) OR listing_key = ANY($1)) LIMIT 1`,
		[]string{key, listingKey}).Scan(&busy)
	switch {
	case err == nil:
		return fmt.Errorf("%w: the record of %s is being deleted", catalog.ErrBusy, busy)
	case errors.Is(err, pgx.ErrNoRows):
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
	err := c.write(ctx, func(t *txn) error {
		if err := t.lazyCommit(ctx); err != nil {
			return err
		}
		if err := t.lockBlobs(ctx, key, listingKey); err != nil {
			return err
		}
		if err := checkNotDeleting(ctx, t, key, listingKey); err != nil {
			return err
		}
		_, err := t.Exec(ctx, `INSERT INTO nars
			(key, compression, file_hash, file_size, nar_hash, nar_size, listing_key, created_at,
			 state, uploads)
			VALUES ($1, '', '', 0, '', 0, NULLIF($2, ''), $3, 'pending', 1)
			ON CONFLICT (key) DO UPDATE SET
				created_at = GREATEST(nars.created_at, excluded.created_at),
				uploads = nars.uploads + 1`,
			key, listingKey, catalog.Millis(at))
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres catalog: begin NAR %s: %w", key, err)
	}
	return nil
}

// PutNAR records an uploaded NAR as ready, or renews and updates the one
// with the same key, and points each alias at it. An upload of a
// quarantined NAR (a new one, verified) clears its mark; the paths the
// quarantine hid are served again as each is published again (Publish).
// It fails with catalog.ErrBusy while its key or listing key is being
// deleted.
func (c *Catalog) PutNAR(ctx context.Context, n catalog.NAR, aliases ...string) error {
	names := slices.DeleteFunc(slices.Clone(aliases), func(a string) bool { return a == n.Key })
	slices.Sort(names)
	names = slices.Compact(names)
	err := c.write(ctx, func(t *txn) error {
		if err := t.lazyCommit(ctx); err != nil {
			return err
		}
		if err := t.lockBlobs(ctx, n.Key, n.ListingKey); err != nil {
			return err
		}
		if err := checkNotDeleting(ctx, t, n.Key, n.ListingKey); err != nil {
			return err
		}
		var id int64
		err := t.QueryRow(ctx, `INSERT INTO nars
			(key, compression, file_hash, file_size, nar_hash, nar_size, listing_key, created_at,
			 state, uploads)
			VALUES ($1, $2, $3, $4, $5, $6, NULLIF($7, ''), $8, 'ready', 0)
			ON CONFLICT (key) DO UPDATE SET
				compression = excluded.compression,
				file_hash = excluded.file_hash,
				file_size = excluded.file_size,
				nar_hash = excluded.nar_hash,
				nar_size = excluded.nar_size,
				listing_key = excluded.listing_key,
				created_at = excluded.created_at,
				state = 'ready',
				uploads = GREATEST(nars.uploads - 1, 0),
				quarantined_at = NULL,
				quarantine_reason = ''
			RETURNING id`,
			n.Key, n.Compression, n.FileHash, n.FileSize, n.NarHash, n.NarSize, n.ListingKey,
			catalog.Millis(n.CreatedAt)).Scan(&id)
		if err != nil || len(names) == 0 {
			return err
		}
		if _, err := t.Exec(ctx, `INSERT INTO nar_aliases (name, nar_id)
			SELECT a, $2 FROM unnest($1::text[]) AS a
			ON CONFLICT (name) DO UPDATE SET nar_id = excluded.nar_id`, names, id); err != nil {
			return fmt.Errorf("aliases %v: %w", names, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres catalog: put NAR %s: %w", n.Key, err)
	}
	return nil
}

// LookupNAR finds a ready NAR by its key or, failing that, by one of its
// aliases.
func (c *Catalog) LookupNAR(ctx context.Context, name string) (catalog.NAR, error) {
	var n catalog.NAR
	err := c.query(ctx, func() error {
		var err error
		n, err = scanNAR(c.pool.QueryRow(ctx, `SELECT `+narColumns+` FROM (
				SELECT 0 AS rank, id FROM nars WHERE key = $1
				UNION ALL
				SELECT 1 AS rank, nar_id FROM nar_aliases WHERE name = $1
			) m JOIN nars n ON n.id = m.id
			WHERE n.state = 'ready'
			ORDER BY m.rank LIMIT 1`, name))
		return err
	})
	if err != nil {
		return catalog.NAR{}, fmt.Errorf("postgres catalog: lookup NAR %s: %w", name, notFound(err))
	}
	return n, nil
}

// UnclaimedNARs lists the ready or pending NARs no published path names
// whose CreatedAt is before the given time, oldest first.
func (c *Catalog) UnclaimedNARs(ctx context.Context, before time.Time) ([]catalog.NAR, error) {
	var nars []catalog.NAR
	err := c.query(ctx, func() error {
		var err error
		nars, err = collectNARs(c.pool.Query(ctx, `SELECT `+narColumns+` FROM nars n
			WHERE n.created_at < $1 AND n.state <> 'deleting'
			AND NOT EXISTS (SELECT 1 FROM paths p WHERE p.nar_id = n.id)
			ORDER BY n.created_at, n.key`, before.UnixMilli()))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres catalog: unclaimed NARs: %w", err)
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
	err := c.write(ctx, func(t *txn) error {
		var err error
		n, marked, err = markNARDeleting(ctx, t, key, before)
		return err
	})
	if err != nil {
		return catalog.NAR{}, false, fmt.Errorf("postgres catalog: mark NAR %s deleting: %w", key, err)
	}
	if !marked {
		return catalog.NAR{}, false, nil
	}
	return n, true, nil
}

// markNARDeleting is MarkNARDeleting inside t, once it holds the locks of
// key and of the listing of its record: every Publish naming the record
// has committed, and no upload of either blob can begin until t ends.
func markNARDeleting(ctx context.Context, t *txn, key string, before time.Time) (catalog.NAR, bool, error) {
	id, _, err := t.lockNAR(ctx, key)
	if err != nil {
		return catalog.NAR{}, false, err
	}
	if id != 0 {
		n, err := scanNAR(t.QueryRow(ctx, `UPDATE nars AS n SET state = 'deleting'
			WHERE n.id = $1 AND n.state <> 'deleting' AND n.created_at < $2
			AND NOT EXISTS (SELECT 1 FROM paths p WHERE p.nar_id = n.id)
			RETURNING `+narColumns, id, before.UnixMilli()))
		if errors.Is(err, pgx.ErrNoRows) {
			return catalog.NAR{}, false, nil
		}
		return n, err == nil, err
	}
	var listed bool
	if err := t.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM nars WHERE listing_key = $1)`, key).
		Scan(&listed); err != nil || listed {
		return catalog.NAR{}, false, err
	}
	n, err := scanNAR(t.QueryRow(ctx, `INSERT INTO nars AS n
		(key, compression, file_hash, file_size, nar_hash, nar_size, listing_key, created_at, state)
		VALUES ($1, '', '', 0, '', 0, NULL, $2, 'deleting')
		ON CONFLICT (key) DO NOTHING
		RETURNING `+narColumns, key, catalog.Millis(time.Time{})))
	if errors.Is(err, pgx.ErrNoRows) {
		return catalog.NAR{}, false, nil
	}
	return n, err == nil, err
}

// DeletingNARs lists the records marked deleting, by key.
func (c *Catalog) DeletingNARs(ctx context.Context) ([]catalog.NAR, error) {
	var nars []catalog.NAR
	err := c.query(ctx, func() error {
		var err error
		nars, err = collectNARs(c.pool.Query(ctx, `SELECT `+narColumns+` FROM nars n
			WHERE n.state = 'deleting' ORDER BY n.key`))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres catalog: deleting NARs: %w", err)
	}
	return nars, nil
}

// DropNAR removes the record with this key, and its aliases, if it is
// marked deleting; a record in any other state was recorded again since and
// is left alone, and an absent one is not an error.
func (c *Catalog) DropNAR(ctx context.Context, key string) error {
	if err := c.dropNARs(ctx, []string{key}); err != nil {
		return fmt.Errorf("postgres catalog: drop NAR %s: %w", key, err)
	}
	return nil
}

// DropNARs removes the records marked deleting with these keys, in one
// statement.
func (c *Catalog) DropNARs(ctx context.Context, keys []string) error {
	if err := c.dropNARs(ctx, keys); err != nil {
		return fmt.Errorf("postgres catalog: drop %d NARs: %w", len(keys), err)
	}
	return nil
}

// dropNARs deletes the deleting records with these keys. No lock is
// needed: nothing takes a record out of the deleting state.
func (c *Catalog) dropNARs(ctx context.Context, keys []string) error {
	return c.write(ctx, func(t *txn) error {
		_, err := t.Exec(ctx, `DELETE FROM nars WHERE key = ANY($1) AND state = 'deleting'`, keys)
		return err
	})
}

// BlobInUse reports whether key is the key or listing key of a NAR record
// that is not being deleted.
func (c *Catalog) BlobInUse(ctx context.Context, key string) (bool, error) {
	var used bool
	err := c.query(ctx, func() error {
		return c.pool.QueryRow(ctx, `SELECT
			EXISTS (SELECT 1 FROM nars WHERE key = $1 AND state <> 'deleting')
			OR EXISTS (SELECT 1 FROM nars WHERE listing_key = $1 AND state <> 'deleting')`,
			key).Scan(&used)
	})
	if err != nil {
		return false, fmt.Errorf("postgres catalog: blob in use %s: %w", key, err)
	}
	return used, nil
}
