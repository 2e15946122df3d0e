package postgres

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/catalog/internal/deletion"
)

// DeletePath removes a published path, its references, its realisations
// and, with cond.IgnorePins, its pins, in one transaction. It refuses with
// catalog.ErrReferenced (naming referrers), catalog.ErrPinned or
// catalog.ErrKept, in that order of checks, each made once the path's row
// is locked. A pin whose expiry is at or before a non-zero
// cond.CreatedBefore (the caller's idea of now) no longer pins and goes
// with the path; with a zero CreatedBefore every pin counts. The NAR is
// marked deleting and returned when no path names it any more, it is ready
// with no upload of it under way, and it was created before a non-zero
// cond.CreatedBefore.
func (c *Catalog) DeletePath(ctx context.Context, hashPart string, cond catalog.DeleteCondition) (catalog.Deleted, error) {
	var res []catalog.DeleteResult
	err := c.write(ctx, func(t *txn) error {
		var err error
		res, err = deletePaths(ctx, t, []string{hashPart}, cond)
		return err
	})
	if err == nil {
		err = res[0].Err
	}
	if err != nil {
		return catalog.Deleted{}, fmt.Errorf("postgres catalog: delete path %s: %w", hashPart, err)
	}
	return res[0].Deleted, nil
}

// DeletePaths deletes paths in the order given in one transaction, as
// DeletePath would one after the other; a refusal is reported in the
// path's result, any other error undoes the batch. It takes five round
// trips whatever the number of paths.
func (c *Catalog) DeletePaths(ctx context.Context, hashParts []string, cond catalog.DeleteCondition) ([]catalog.DeleteResult, error) {
	var res []catalog.DeleteResult
	err := c.write(ctx, func(t *txn) error {
		var err error
		res, err = deletePaths(ctx, t, hashParts, cond)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres catalog: delete paths: %w", err)
	}
	for i, r := range res {
		if r.Err != nil {
			res[i].Err = fmt.Errorf("postgres catalog: delete path %s: %w", hashParts[i], r.Err)
		}
	}
	return res, nil
}

// deletePaths is DeletePaths inside t, in three round trips. The first
// locks the paths' rows (in hash-part order) and then reads their
// referrers and pins, which no other transaction can add to until t ends.
// The batch is then judged in order, a path deleted earlier no longer
// referring to later ones, and the second round trip deletes the paths it
// accepted, marks the NARs they leave with no path and finds the derivers
// no path has any more; the third records them in the change log. A NAR
// or a deriver goes with the last path of the batch that had it, as it
// would one deletion at a time.
func deletePaths(ctx context.Context, t *txn, hashParts []string, cond catalog.DeleteCondition) ([]catalog.DeleteResult, error) {
	return deletion.Delete(hashParts, cond, func() (map[string]*deletion.Victim, error) {
		return readVictims(ctx, t, hashParts, cond)
	}, func(plan deletion.Plan) (map[string]catalog.NAR, map[string]bool, error) {
		return removeVictims(ctx, t, plan, cond)
	})
}

// readVictims locks the rows of the published paths among hashParts, in
// hash-part order, then reads them with their referrers and the pins that
// keep them (none with cond.IgnorePins), in one round trip.
func readVictims(ctx context.Context, t *txn, hashParts []string, cond catalog.DeleteCondition) (map[string]*deletion.Victim, error) {
	found := map[string]*deletion.Victim{}
	b := &pgx.Batch{}
	b.Queue(`SELECT 1 FROM paths WHERE hash_part = ANY($1) ORDER BY hash_part FOR UPDATE`, hashParts)
	// Queued after the lock: these run once it is held, each seeing what
	// the transactions it waited for committed.
	b.Queue(`SELECT `+pathColumns+`, COALESCE(n.listing_key, '')
		FROM paths p JOIN nars n ON n.id = p.nar_id WHERE p.hash_part = ANY($1)`,
		hashParts).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			v := &deletion.Victim{}
			var err error
			if v.Path, err = scanPath(rows, &v.Listing); err != nil {
				return err
			}
			found[v.Path.HashPart] = v
		}
		return rows.Err()
	})
	var ref, from string
	var froms []string
	var count int
	b.Queue(`SELECT reference, referrer FROM refs
		WHERE reference = ANY($1) AND referrer = ANY($1) AND referrer <> reference`,
		hashParts).Query(func(rows pgx.Rows) error {
		_, err := pgx.ForEachRow(rows, []any{&ref, &from}, func() error {
			if v := found[ref]; v != nil {
				v.Inside = append(v.Inside, from)
			}
			return nil
		})
		return err
	})
	b.Queue(`SELECT reference, count(*), (array_agg(referrer ORDER BY referrer))[1:$2] FROM refs
		WHERE reference = ANY($1) AND referrer <> ALL($1) AND referrer <> reference
		GROUP BY reference`, hashParts, deletion.MaxNamed+1).Query(func(rows pgx.Rows) error {
		_, err := pgx.ForEachRow(rows, []any{&ref, &count, &froms}, func() error {
			if v := found[ref]; v != nil {
				v.Outside, v.Named = count, froms
			}
			froms = nil
			return nil
		})
		return err
	})
	if !cond.IgnorePins {
		b.Queue(`SELECT hash_part, array_agg(DISTINCT name ORDER BY name) FROM pins
			WHERE hash_part = ANY($1) AND (expires_at IS NULL OR expires_at > $2)
			GROUP BY hash_part`, hashParts, deletion.PinsBefore(cond)).Query(func(rows pgx.Rows) error {
			_, err := pgx.ForEachRow(rows, []any{&ref, &froms}, func() error {
				if v := found[ref]; v != nil {
					v.Pins = froms
				}
				froms = nil
				return nil
			})
			return err
		})
	}
	if err := t.SendBatch(ctx, b).Close(); err != nil {
		return nil, err
	}
	return found, nil
}

// removeVictims deletes the paths gone, with their references,
// realisations and pins, in one round trip, and then records them in the
// change log in another (lockAndRecord). It marks deleting the NARs (of
// keys) they leave with no path that are ready, with no upload under way
// and created before a non-zero cond.CreatedBefore, and returns them by
// key, with the derivers no path has any more. The locks of the NARs'
// blobs (keys and listings) wait for every Publish naming them to commit,
// and keep uploads of them from beginning until t ends.
func removeVictims(ctx context.Context, t *txn, plan deletion.Plan, cond catalog.DeleteCondition) (map[string]catalog.NAR, map[string]bool, error) {
	gone, keys, derivers := plan.Gone, plan.Keys, plan.Derivers
	b := &pgx.Batch{}
	b.Queue(`WITH r AS (DELETE FROM refs WHERE referrer = ANY($1)),
			z AS (DELETE FROM realisations WHERE out_hash = ANY($1)),
			q AS (DELETE FROM pins WHERE hash_part = ANY($1))
		DELETE FROM paths WHERE hash_part = ANY($1)`, gone)
	locked := t.queueLock(b, blobLocks, false, append(slices.Clone(keys), plan.Listings...)...)
	marked := map[string]catalog.NAR{}
	b.Queue(`UPDATE nars AS n SET state = 'deleting'
		WHERE n.key = ANY($1) AND n.state = 'ready' AND n.uploads = 0 AND n.created_at < $2
		AND NOT EXISTS (SELECT 1 FROM paths p WHERE p.nar_id = n.id)
		RETURNING `+narColumns, keys, deletion.NARsBefore(cond)).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			n, err := scanNAR(rows)
			if err != nil {
				return err
			}
			marked[n.Key] = n
		}
		return rows.Err()
	})
	orphans := map[string]bool{}
	if len(derivers) > 0 {
		b.Queue(`SELECT d FROM unnest($1::text[]) AS d
			WHERE NOT EXISTS (SELECT 1 FROM paths WHERE deriver = d)`, derivers).Query(func(rows pgx.Rows) error {
			var d string
			_, err := pgx.ForEachRow(rows, []any{&d}, func() error {
				orphans[d] = true
				return nil
			})
			return err
		})
	}
	if err := t.SendBatch(ctx, b).Close(); err != nil {
		return nil, nil, err
	}
	locked()
	if err := lockAndRecord(ctx, t, gone, marked); err != nil {
		return nil, nil, err
	}
	return marked, orphans, nil
}

// lockAndRecord is deletePaths's last round trip. It locks the listing of
// a marked NAR that changed since it was read, so that no upload of it
// begins until the marks are committed, and only then records the paths
// gone in the change log, whose lock must come last (see queueChanges).
func lockAndRecord(ctx context.Context, t *txn, gone []string, marked map[string]catalog.NAR) error {
	var changed []string
	for _, n := range marked {
		changed = append(changed, n.ListingKey)
	}
	b := &pgx.Batch{}
	locked := t.queueLock(b, blobLocks, false, changed...)
	queueChanges(b, gone)
	if err := t.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	locked()
	return nil
}
