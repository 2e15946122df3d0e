package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/nix-cached/cached/catalog"
)

// RecordGCRun stores the record of a garbage collection.
func (c *Catalog) RecordGCRun(ctx context.Context, r catalog.GCRun) error {
	err := c.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO gc_runs (holder, started, finished,
			paths_removed, nars_removed, bytes_removed, live_paths, live_bytes, error)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.Holder, r.Started.UnixMilli(), r.Finished.UnixMilli(), r.PathsRemoved, r.NARsRemoved,
			r.BytesRemoved, r.LivePaths, r.LiveBytes, r.Error)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite catalog: record GC run of %s: %w", r.Holder, err)
	}
	return nil
}

// LastGCRun returns the GC record with the latest Started, the last
// recorded among equals.
func (c *Catalog) LastGCRun(ctx context.Context) (catalog.GCRun, error) {
	var r catalog.GCRun
	var started, finished int64
	err := c.reader.QueryRowContext(ctx, `SELECT holder, started, finished, paths_removed,
		nars_removed, bytes_removed, live_paths, live_bytes, error
		FROM gc_runs ORDER BY started DESC, id DESC LIMIT 1`).Scan(&r.Holder, &started, &finished,
		&r.PathsRemoved, &r.NARsRemoved, &r.BytesRemoved, &r.LivePaths, &r.LiveBytes, &r.Error)
	if err != nil {
		return catalog.GCRun{}, fmt.Errorf("sqlite catalog: last GC run: %w", notFound(err))
	}
	r.Started, r.Finished = catalog.FromMillis(started), catalog.FromMillis(finished)
	return r, nil
}

// Stats counts the cache's contents in one snapshot. ByLastUse has one
// bucket per age, holding the paths last used at most that long before
// now (and after the previous age), then one more whose Within is the
// longest Duration for the rest; paths last used after now fall in the
// first. ages must be ascending and not negative (ErrInvalid).
func (c *Catalog) Stats(ctx context.Context, now time.Time, ages []time.Duration) (catalog.Stats, error) {
	if err := catalog.CheckAges(ages); err != nil {
		return catalog.Stats{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	var s catalog.Stats
	err := c.read(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT
			(SELECT count(*) FROM paths),
			(SELECT count(*) FROM pins)`).Scan(&s.Paths, &s.Pins); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `SELECT
			count(CASE WHEN claimed THEN 1 END), COALESCE(sum(CASE WHEN claimed THEN file_size END), 0),
			count(CASE WHEN NOT claimed THEN 1 END), COALESCE(sum(CASE WHEN NOT claimed THEN file_size END), 0)
			FROM (SELECT n.file_size, EXISTS (SELECT 1 FROM paths p WHERE p.nar_id = n.id) AS claimed
				FROM nars n WHERE n.state <> 'deleting') x`).
			Scan(&s.NARs, &s.Bytes, &s.UnclaimedNARs, &s.UnclaimedBytes); err != nil {
			return err
		}
		var err error
		s.ByLastUse, err = lastUseBuckets(ctx, tx, now, ages)
		return err
	})
	if err != nil {
		return catalog.Stats{}, fmt.Errorf("sqlite catalog: stats: %w", err)
	}
	return s, nil
}

// lastUseBuckets counts paths and their NAR file bytes by the age of
// their last use, in one grouped scan.
func lastUseBuckets(ctx context.Context, tx *sql.Tx, now time.Time, ages []time.Duration) ([]catalog.AgeBucket, error) {
	buckets := make([]catalog.AgeBucket, len(ages)+1)
	buckets[len(ages)].Within = time.Duration(math.MaxInt64)
	bucket := "0"
	args := make([]any, 0, len(ages))
	if len(ages) > 0 {
		var q strings.Builder
		q.WriteString("CASE")
		for i, a := range ages {
			buckets[i].Within = a
			// Within a: now - last_used <= a, i.e. last_used >= now - a,
			// rounded up to the millisecond.
			bound := now.Add(-a)
			ms := bound.UnixMilli()
			if bound.After(time.UnixMilli(ms)) {
				ms++
			}
			fmt.Fprintf(&q, " WHEN p.last_used >= ? THEN %d", i)
			args = append(args, ms)
		}
		fmt.Fprintf(&q, " ELSE %d END", len(ages))
		bucket = q.String()
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+bucket+` AS bucket, count(*), COALESCE(sum(n.file_size), 0)
		FROM paths p JOIN nars n ON n.id = p.nar_id GROUP BY bucket`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var i, paths int
		var bytes int64
		if err := rows.Scan(&i, &paths, &bytes); err != nil {
			return nil, err
		}
		buckets[i].Paths, buckets[i].Bytes = paths, bytes
	}
	return buckets, rows.Err()
}
