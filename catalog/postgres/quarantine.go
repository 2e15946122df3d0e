package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nix-cached/cached/catalog"
)

// hiddenClosure lists, by hash part, the paths a quarantine of the ready,
// unquarantined NAR with key $1 would hide: those naming it, and their
// referrers, directly or not.
const hiddenClosure = `WITH RECURSIVE hidden (h) AS (
		SELECT p.hash_part FROM paths p JOIN nars n ON n.id = p.nar_id
		WHERE n.key = $1 AND n.state = 'ready' AND n.quarantined_at IS NULL
		UNION
		SELECT r.referrer FROM refs r JOIN hidden ON r.reference = hidden.h
	)
	SELECT h FROM hidden ORDER BY h`

// Quarantine fences off the ready NAR with this key: see catalog.Catalog.
//
// The paths it hides are locked FOR UPDATE, in hash-part order, then the
// NAR's exclusive advisory lock, and the closure is read again once they
// are. Until the commit no deletion can take one of the paths away, and a
// Publish that could change what is hidden waits, then sees the
// quarantine, as if it came after it: one adding a referrer to a hidden
// path (it locks its references FOR KEY SHARE) counts that path missing
// unless the closure may be incomplete; one publishing a hidden path
// again (it locks the path's row) leaves it hidden unless it moves it to
// another NAR, not quarantined, and none of its references is hidden; one
// naming the NAR (it takes the NAR's shared lock) leaves its path hidden
// if it was. A Publish that took one of these locks first has committed
// when the closure is read again: its path is hidden with the rest, as if
// it came first. A referrer or a path that appeared meanwhile is locked
// in turn, until the closure read holds no path not locked; such later
// rounds lock path rows after the NAR's lock and out of hash-part order,
// which a deadlock (retried) may rarely answer. The NAR's row is then
// updated (the advisory lock, held, orders this against PutNAR, BeginNAR
// and deletions of the record), and the change log records the paths
// hidden.
func (c *Catalog) Quarantine(ctx context.Context, key, reason string, at time.Time) ([]string, error) {
	var hidden []string
	err := c.write(ctx, func(t *txn) error {
		hidden = nil
		closure, err := collectStrings(t.Query(ctx, hiddenClosure, key))
		if err != nil {
			return err
		}
		locked := map[string]bool{}
		narLocked := false
		for {
			var more []string
			for _, h := range closure {
				if !locked[h] {
					more = append(more, h)
				}
			}
			if len(more) == 0 && narLocked {
				break
			}
			b := &pgx.Batch{}
			if len(more) > 0 {
				b.Queue(`SELECT hash_part FROM paths WHERE hash_part = ANY($1)
					ORDER BY hash_part FOR UPDATE`, more).Query(func(rows pgx.Rows) error {
					got, err := collectStrings(rows, nil)
					for _, h := range got {
						locked[h] = true
					}
					return err
				})
			}
			// After the first paths' rows (DeletePath's order).
			lockedNAR := t.queueLock(b, blobLocks, false, key)
			// Once they are locked, seeing what the transactions they
			// waited for committed.
			b.Queue(hiddenClosure, key).Query(func(rows pgx.Rows) error {
				var err error
				closure, err = collectStrings(rows, nil)
				return err
			})
			if err := t.SendBatch(ctx, b).Close(); err != nil {
				return err
			}
			lockedNAR()
			narLocked = true
		}
		rows, err := t.Query(ctx, `WITH marked AS (
				UPDATE nars SET quarantined_at = $2, quarantine_reason = $3
				WHERE key = $1 AND state = 'ready' AND quarantined_at IS NULL
				RETURNING key
			)
			INSERT INTO quarantine (hash_part, nar_key)
			SELECT h, marked.key FROM unnest($4::text[]) AS h, marked
			ON CONFLICT DO NOTHING RETURNING hash_part`,
			key, catalog.Millis(at), reason, closure)
		if hidden, err = collectStrings(rows, err); err != nil || len(hidden) == 0 {
			return err
		}
		b := &pgx.Batch{}
		queueChanges(b, hidden) // last: see queueChanges
		return t.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return nil, fmt.Errorf("postgres catalog: quarantine %s: %w", key, err)
	}
	return hidden, nil
}

// Quarantined lists the paths Quarantine hides, ordered by store path.
func (c *Catalog) Quarantined(ctx context.Context) ([]catalog.QuarantinedPath, error) {
	var out []catalog.QuarantinedPath
	err := c.query(ctx, func() error {
		rows, err := c.pool.Query(ctx, `SELECT q.hash_part, p.store_path, q.nar_key,
				COALESCE(n.quarantine_reason, ''), COALESCE(n.quarantined_at, 0)
			FROM quarantine q JOIN paths p ON p.hash_part = q.hash_part
			LEFT JOIN nars n ON n.key = q.nar_key
			ORDER BY p.store_path, q.nar_key`)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (catalog.QuarantinedPath, error) {
			var q catalog.QuarantinedPath
			var since int64
			err := r.Scan(&q.HashPart, &q.StorePath, &q.NARKey, &q.Reason, &since)
			q.Since = catalog.FromMillis(since)
			return q, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres catalog: quarantined paths: %w", err)
	}
	return out, nil
}

// ScrubQueue returns up to limit ready, unquarantined NARs, never
// scrubbed first, then scrubbed longest ago, with Scrubbed set.
func (c *Catalog) ScrubQueue(ctx context.Context, limit int) ([]catalog.NAR, error) {
	var nars []catalog.NAR
	err := c.query(ctx, func() error {
		rows, err := c.pool.Query(ctx, `SELECT n.scrubbed_at, `+narColumns+` FROM nars n
			WHERE n.state = 'ready' AND n.quarantined_at IS NULL
			ORDER BY n.scrubbed_at, n.id LIMIT $1`, limit)
		if err != nil {
			return err
		}
		nars, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (catalog.NAR, error) {
			var scrubbed int64
			n, err := scanNAR(scanWith{r, &scrubbed})
			if scrubbed > 0 {
				n.Scrubbed = catalog.FromMillis(scrubbed)
			}
			return n, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres catalog: scrub queue: %w", err)
	}
	return nars, nil
}

// scanWith is a row that scans into first, then the destinations it is
// given.
type scanWith struct {
	row   pgx.Row
	first any
}

func (s scanWith) Scan(dest ...any) error { return s.row.Scan(append([]any{s.first}, dest...)...) }

// MarkScrubbed records that the NAR with this key was checked at at.
func (c *Catalog) MarkScrubbed(ctx context.Context, key string, at time.Time) error {
	err := c.write(ctx, func(t *txn) error {
		_, err := t.Exec(ctx, `UPDATE nars SET scrubbed_at = $1 WHERE key = $2`, catalog.Millis(at), key)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres catalog: mark %s scrubbed: %w", key, err)
	}
	return nil
}
