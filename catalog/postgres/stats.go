package postgres

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nix-cached/cached/catalog"
)

// RecordGCRun stores the record of a garbage collection.
func (c *Catalog) RecordGCRun(ctx context.Context, r catalog.GCRun) error {
	err := c.write(ctx, func(t *txn) error {
		_, err := t.Exec(ctx, `INSERT INTO gc_runs (holder, started, finished,
			paths_removed, nars_removed, bytes_removed, live_paths, live_bytes, error)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			r.Holder, r.Started.UnixMilli(), r.Finished.UnixMilli(), r.PathsRemoved, r.NARsRemoved,
			r.BytesRemoved, r.LivePaths, r.LiveBytes, r.Error)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres catalog: record GC run of %s: %w", r.Holder, err)
	}
	return nil
}

// LastGCRun returns the GC record with the latest Started, the last
// recorded among equals.
func (c *Catalog) LastGCRun(ctx context.Context) (catalog.GCRun, error) {
	var r catalog.GCRun
	var started, finished int64
	err := c.query(ctx, func() error {
		return c.pool.QueryRow(ctx, `SELECT holder, started, finished, paths_removed,
			nars_removed, bytes_removed, live_paths, live_bytes, error
			FROM gc_runs ORDER BY started DESC, id DESC LIMIT 1`).Scan(&r.Holder, &started, &finished,
			&r.PathsRemoved, &r.NARsRemoved, &r.BytesRemoved, &r.LivePaths, &r.LiveBytes, &r.Error)
	})
	if err != nil {
		return catalog.GCRun{}, fmt.Errorf("postgres catalog: last GC run: %w", notFound(err))
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
	err := c.read(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM paths),
			(SELECT count(*) FROM pins)`).Scan(&s.Paths, &s.Pins); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT
			count(*) FILTER (WHERE claimed), COALESCE(sum(file_size) FILTER (WHERE claimed), 0)::int8,
			count(*) FILTER (WHERE NOT claimed), COALESCE(sum(file_size) FILTER (WHERE NOT claimed), 0)::int8
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
		return catalog.Stats{}, fmt.Errorf("postgres catalog: stats: %w", err)
	}
	return s, nil
}

// lastUseBuckets counts paths and their NAR file bytes by the age of
// their last use, in one grouped scan.
func lastUseBuckets(ctx context.Context, tx pgx.Tx, now time.Time, ages []time.Duration) ([]catalog.AgeBucket, error) {
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
			args = append(args, ms)
			fmt.Fprintf(&q, " WHEN p.last_used >= $%d THEN %d", len(args), i)
		}
		fmt.Fprintf(&q, " ELSE %d END", len(ages))
		bucket = q.String()
	}
	rows, err := tx.Query(ctx, `SELECT `+bucket+` AS bucket, count(*), COALESCE(sum(n.file_size), 0)::int8
		FROM paths p JOIN nars n ON n.id = p.nar_id GROUP BY 1`, args...)
	if err != nil {
		return nil, err
	}
	var i, paths int
	var bytes int64
	_, err = pgx.ForEachRow(rows, []any{&i, &paths, &bytes}, func() error {
		buckets[i].Paths, buckets[i].Bytes = paths, bytes
		return nil
	})
	return buckets, err
}
