package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/nix-cached/cached/catalog"
)

// Quarantine fences off the ready NAR with this key: see catalog.Catalog.
func (c *Catalog) Quarantine(ctx context.Context, key, reason string, at time.Time) ([]string, error) {
	var hidden []string
	err := c.write(ctx, func(tx *sql.Tx) error {
		hidden = nil
		var id int64
		err := tx.QueryRowContext(ctx, `UPDATE nars SET quarantined_at = ?, quarantine_reason = ?
			WHERE key = ? AND state = 'ready' AND quarantined_at IS NULL RETURNING id`,
			catalog.Millis(at), reason, key).Scan(&id)
		if err == sql.ErrNoRows {
			return nil
		} else if err != nil {
			return err
		}
		hidden, err = queryStrings(ctx, tx, `WITH RECURSIVE hidden (h) AS (
				SELECT hash_part FROM paths WHERE nar_id = ?
				UNION
				SELECT r.referrer FROM refs r JOIN hidden ON r.reference = hidden.h
			)
			INSERT INTO quarantine (hash_part, nar_key) SELECT h, ? FROM hidden WHERE true
			ON CONFLICT DO NOTHING RETURNING hash_part`, id, key)
		if err != nil {
			return err
		}
		for _, h := range hidden {
			if err := recordChange(ctx, tx, h); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite catalog: quarantine %s: %w", key, err)
	}
	return hidden, nil
}

// unhide serves again a path that was hidden, once it is published again
// with a NAR that is not quarantined and with no reference hidden (which
// Publish refuses unless the closure may be incomplete): a client pushed
// it again, over a sound NAR.
func unhide(ctx context.Context, tx *sql.Tx, hashPart string) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM quarantine WHERE hash_part = ?1
		AND NOT EXISTS (SELECT 1 FROM paths p JOIN nars n ON n.id = p.nar_id
			WHERE p.hash_part = ?1 AND n.quarantined_at IS NOT NULL)
		AND NOT EXISTS (SELECT 1 FROM refs r JOIN quarantine q ON q.hash_part = r.reference
			WHERE r.referrer = ?1 AND r.reference <> ?1)`, hashPart)
	return err
}

// Quarantined lists the paths Quarantine hides, ordered by store path.
func (c *Catalog) Quarantined(ctx context.Context) ([]catalog.QuarantinedPath, error) {
	rows, err := c.reader.QueryContext(ctx, `SELECT q.hash_part, p.store_path, q.nar_key,
			COALESCE(n.quarantine_reason, ''), COALESCE(n.quarantined_at, 0)
		FROM quarantine q JOIN paths p ON p.hash_part = q.hash_part
		LEFT JOIN nars n ON n.key = q.nar_key
		ORDER BY p.store_path, q.nar_key`)
	if err != nil {
		return nil, fmt.Errorf("sqlite catalog: quarantined paths: %w", err)
	}
	defer rows.Close()
	var out []catalog.QuarantinedPath
	for rows.Next() {
		var q catalog.QuarantinedPath
		var since int64
		if err := rows.Scan(&q.HashPart, &q.StorePath, &q.NARKey, &q.Reason, &since); err != nil {
			return nil, fmt.Errorf("sqlite catalog: quarantined paths: %w", err)
		}
		q.Since = catalog.FromMillis(since)
		out = append(out, q)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite catalog: quarantined paths: %w", err)
	}
	return out, nil
}

// ScrubQueue returns up to limit ready, unquarantined NARs, never
// scrubbed first, then scrubbed longest ago, with Scrubbed set.
func (c *Catalog) ScrubQueue(ctx context.Context, limit int) ([]catalog.NAR, error) {
	rows, err := c.reader.QueryContext(ctx, `SELECT n.scrubbed_at, `+narColumns+` FROM nars n
		WHERE n.state = 'ready' AND n.quarantined_at IS NULL
		ORDER BY n.scrubbed_at, n.id LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite catalog: scrub queue: %w", err)
	}
	defer rows.Close()
	var nars []catalog.NAR
	for rows.Next() {
		var scrubbed int64
		n, err := scanNAR(scanWith{rows, &scrubbed})
		if err != nil {
			return nil, fmt.Errorf("sqlite catalog: scrub queue: %w", err)
		}
		if scrubbed > 0 {
			n.Scrubbed = catalog.FromMillis(scrubbed)
		}
		nars = append(nars, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite catalog: scrub queue: %w", err)
	}
	return nars, nil
}

// scanWith scans into first, then the destinations it is given.
type scanWith struct {
	row   interface{ Scan(...any) error }
	first any
}

func (s scanWith) Scan(dest ...any) error { return s.row.Scan(append([]any{s.first}, dest...)...) }

// MarkScrubbed records that the NAR with this key was checked at at.
func (c *Catalog) MarkScrubbed(ctx context.Context, key string, at time.Time) error {
	err := c.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE nars SET scrubbed_at = ? WHERE key = ?`, catalog.Millis(at), key)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite catalog: mark %s scrubbed: %w", key, err)
	}
	return nil
}
