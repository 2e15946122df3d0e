package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/catalog/internal/deletion"
)

// DeletePath removes a published path, its references, its realisations
// and, with cond.IgnorePins, its pins, in one write transaction that also
// records it in the change log. It refuses with catalog.ErrReferenced
// (naming referrers), catalog.ErrPinned or catalog.ErrKept, in that order
// of checks. A pin whose expiry is at or before a non-zero
// cond.CreatedBefore (the caller's idea of now) no longer pins and goes
// with the path; with a zero CreatedBefore every pin counts. The NAR is
// marked deleting and returned when no path names it any more, it is ready
// with no upload of it under way, and it was created before a non-zero
// cond.CreatedBefore.
func (c *Catalog) DeletePath(ctx context.Context, hashPart string, cond catalog.DeleteCondition) (catalog.Deleted, error) {
	var res []catalog.DeleteResult
	err := c.write(ctx, func(tx *sql.Tx) error {
		var err error
		res, err = deletePaths(ctx, tx, []string{hashPart}, cond)
		return err
	})
	if err == nil {
		err = res[0].Err
	}
	if err != nil {
		return catalog.Deleted{}, fmt.Errorf("sqlite catalog: delete path %s: %w", hashPart, err)
	}
	return res[0].Deleted, nil
}

// DeletePaths deletes paths in the order given in one write transaction,
// as DeletePath would one after the other; a refusal is reported in the
// path's result, any other error undoes the batch. It runs a fixed number
// of statements whatever the number of paths.
func (c *Catalog) DeletePaths(ctx context.Context, hashParts []string, cond catalog.DeleteCondition) ([]catalog.DeleteResult, error) {
	var res []catalog.DeleteResult
	err := c.write(ctx, func(tx *sql.Tx) error {
		var err error
		res, err = deletePaths(ctx, tx, hashParts, cond)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite catalog: delete paths: %w", err)
	}
	for i, r := range res {
		if r.Err != nil {
			res[i].Err = fmt.Errorf("sqlite catalog: delete path %s: %w", hashParts[i], r.Err)
		}
	}
	return res, nil
}

// deletePaths is DeletePaths inside tx: it reads the batch's paths with
// their references, referrers and pins, judges the batch in order (a path
// deleted earlier no longer referring to later ones), then deletes what
// was accepted, marks the NARs left with no path and finds the derivers
// no path has any more. A NAR or a deriver goes with the last path of the
// batch that had it, as it would one deletion at a time.
func deletePaths(ctx context.Context, tx *sql.Tx, hashParts []string, cond catalog.DeleteCondition) ([]catalog.DeleteResult, error) {
	return deletion.Delete(hashParts, cond, func() (map[string]*deletion.Victim, error) {
		return readVictims(ctx, tx, hashParts, cond)
	}, func(plan deletion.Plan) (map[string]catalog.NAR, map[string]bool, error) {
		return removeVictims(ctx, tx, plan, cond)
	})
}

// jsonList encodes strings as a JSON array, for json_each.
func jsonList(s []string) string {
	b, _ := json.Marshal(s) // strings always encode
	return string(b)
}

// readVictims reads the published paths among hashParts with their
// references, their referrers and the pins that keep them (none with
// cond.IgnorePins).
func readVictims(ctx context.Context, tx *sql.Tx, hashParts []string, cond catalog.DeleteCondition) (map[string]*deletion.Victim, error) {
	batch := jsonList(hashParts)
	found := map[string]*deletion.Victim{}
	rows, err := tx.QueryContext(ctx, `SELECT `+pathColumns+`, COALESCE(n.listing_key, '')
		FROM paths p JOIN nars n ON n.id = p.nar_id
		WHERE p.hash_part IN (SELECT value FROM json_each(?))`, batch)
	if err != nil {
		return nil, err
	}
	err = forEachRow(rows, func() error {
		v := &deletion.Victim{}
		var err error
		if v.Path, err = scanPath(rows, &v.Listing); err != nil {
			return err
		}
		found[v.Path.HashPart] = v
		return nil
	})
	if err != nil || len(found) == 0 {
		return found, err
	}

	// The references of the batch, which also give the referrers inside it.
	var from, ref string
	rows, err = tx.QueryContext(ctx, `SELECT referrer, reference FROM refs
		WHERE referrer IN (SELECT value FROM json_each(?)) ORDER BY referrer, reference`, batch)
	if err != nil {
		return nil, err
	}
	err = forEachRow(rows, func() error {
		if err := rows.Scan(&from, &ref); err != nil {
			return err
		}
		v := found[from]
		v.Path.References = append(v.Path.References, ref)
		if to := found[ref]; to != nil && ref != from {
			to.Inside = append(to.Inside, from)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	// Referrers outside the batch: how many, and the first few by name.
	var count int
	rows, err = tx.QueryContext(ctx, `SELECT reference, referrer, total FROM (
			SELECT reference, referrer,
				row_number() OVER (PARTITION BY reference ORDER BY referrer) AS n,
				count(*) OVER (PARTITION BY reference) AS total
			FROM refs
			WHERE reference IN (SELECT value FROM json_each(?1))
				AND referrer NOT IN (SELECT value FROM json_each(?1)) AND referrer <> reference)
		WHERE n <= ?2 ORDER BY reference, referrer`, batch, deletion.MaxNamed+1)
	if err != nil {
		return nil, err
	}
	err = forEachRow(rows, func() error {
		if err := rows.Scan(&ref, &from, &count); err != nil {
			return err
		}
		if v := found[ref]; v != nil {
			v.Outside = count
			v.Named = append(v.Named, from)
		}
		return nil
	})
	if err != nil || cond.IgnorePins {
		return found, err
	}

	var name string
	rows, err = tx.QueryContext(ctx, `SELECT DISTINCT hash_part, name FROM pins
		WHERE hash_part IN (SELECT value FROM json_each(?)) AND (expires_at IS NULL OR expires_at > ?)
		ORDER BY hash_part, name`, batch, deletion.PinsBefore(cond))
	if err != nil {
		return nil, err
	}
	err = forEachRow(rows, func() error {
		if err := rows.Scan(&ref, &name); err != nil {
			return err
		}
		if v := found[ref]; v != nil {
			v.Pins = append(v.Pins, name)
		}
		return nil
	})
	return found, err
}

// removeVictims deletes the paths plan accepted, with their references,
// realisations and pins, and records them in the change log. It marks
// deleting the NARs they leave with no path that are ready, with no
// upload under way and created before a non-zero cond.CreatedBefore, and
// returns them by key, with the derivers no path has any more.
func removeVictims(ctx context.Context, tx *sql.Tx, plan deletion.Plan, cond catalog.DeleteCondition) (map[string]catalog.NAR, map[string]bool, error) {
	gone := jsonList(plan.Gone)
	for _, q := range []string{
		`DELETE FROM refs WHERE referrer IN (SELECT value FROM json_each(?))`,
		`DELETE FROM realisations WHERE out_hash IN (SELECT value FROM json_each(?))`,
		`DELETE FROM pins WHERE hash_part IN (SELECT value FROM json_each(?))`,
		`DELETE FROM paths WHERE hash_part IN (SELECT value FROM json_each(?))`,
	} {
		if _, err := tx.ExecContext(ctx, q, gone); err != nil {
			return nil, nil, err
		}
	}
	if err := recordChanges(ctx, tx, gone); err != nil {
		return nil, nil, err
	}

	marked := map[string]catalog.NAR{}
	rows, err := tx.QueryContext(ctx, markNARsQuery, jsonList(plan.Keys), deletion.NARsBefore(cond))
	if err != nil {
		return nil, nil, err
	}
	err = forEachRow(rows, func() error {
		n, err := scanNAR(rows)
		marked[n.Key] = n
		return err
	})
	if err != nil {
		return nil, nil, err
	}

	orphans := map[string]bool{}
	if len(plan.Derivers) == 0 {
		return marked, orphans, nil
	}
	rows, err = tx.QueryContext(ctx, `SELECT DISTINCT j.value FROM json_each(?) j
		WHERE NOT EXISTS (SELECT 1 FROM paths WHERE deriver = j.value)`, jsonList(plan.Derivers))
	if err != nil {
		return nil, nil, err
	}
	var d string
	err = forEachRow(rows, func() error {
		err := rows.Scan(&d)
		orphans[d] = true
		return err
	})
	return marked, orphans, err
}

// markNARsQuery marks deleting the NARs with keys in a JSON array that
// are ready, with no upload under way, created before a time and named by
// no path. The unary + keeps SQLite from looking for them by state.
const markNARsQuery = `UPDATE nars AS n SET state = 'deleting'
	WHERE n.key IN (SELECT value FROM json_each(?)) AND +n.state = 'ready' AND n.uploads = 0
	AND n.created_at < ? AND NOT EXISTS (SELECT 1 FROM paths p WHERE p.nar_id = n.id)
	RETURNING ` + narReturning

// forEachRow calls fn for each row of rows, then closes them.
func forEachRow(rows *sql.Rows, fn func() error) error {
	defer rows.Close()
	for rows.Next() {
		if err := fn(); err != nil {
			return err
		}
	}
	return rows.Err()
}
