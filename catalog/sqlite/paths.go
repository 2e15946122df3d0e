package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/nix-cached/cached/catalog"
)

// walkBatch is how many paths WalkPaths reads per read transaction.
const walkBatch = 500

// pathColumns are the columns scanPath reads, for paths p joined to nars n.
const pathColumns = `p.hash_part, p.store_path, n.key, p.nar_hash, p.nar_size, p.deriver,
	p.narinfo, p.created_at, p.last_used, p.mirrored`

// scanPath reads one row of pathColumns, followed by columns read into
// extra; References are left empty.
func scanPath(row interface{ Scan(...any) error }, extra ...any) (catalog.Path, error) {
	var p catalog.Path
	var created, used int64
	err := row.Scan(append([]any{&p.HashPart, &p.StorePath, &p.NARKey, &p.NarHash, &p.NarSize, &p.Deriver,
		&p.NarInfo, &created, &used, &p.Mirrored}, extra...)...)
	p.CreatedAt, p.LastUsed = catalog.FromMillis(created), catalog.FromMillis(used)
	return p, err
}

// Publish records p in one write transaction: it checks that its NAR is
// ready and its references are published, then inserts it or, when it is
// already published with the same NarHash, replaces everything but
// CreatedAt and moves LastUsed forward to p.CreatedAt. Either way the
// change log records it.
func (c *Catalog) Publish(ctx context.Context, p catalog.Path, opts catalog.PublishOptions) error {
	refs := slices.Clone(p.References)
	slices.Sort(refs)
	refs = slices.Compact(refs)
	others := slices.DeleteFunc(slices.Clone(refs), func(r string) bool { return r == p.HashPart })
	refsJSON, othersJSON := jsonList(refs), jsonList(others)
	created := catalog.Millis(p.CreatedAt)
	err := c.writeGrouped(ctx, func(tx *sql.Tx) error {
		var narID int64
		err := tx.QueryRowContext(ctx, `SELECT id FROM nars WHERE key = ? AND state = 'ready'
			AND quarantined_at IS NULL`, p.NARKey).Scan(&narID)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: %s", catalog.ErrNARNotFound, p.NARKey)
		} else if err != nil {
			return err
		}
		if len(others) > 0 && !opts.AllowIncompleteClosure {
			if err := checkReferences(ctx, tx, othersJSON); err != nil {
				return err
			}
		}
		var oldHash string
		err = tx.QueryRowContext(ctx, `SELECT nar_hash FROM paths WHERE hash_part = ?`, p.HashPart).
			Scan(&oldHash)
		switch {
		case err == nil && oldHash != p.NarHash:
			return fmt.Errorf("%w: published with %s, not %s", catalog.ErrConflict, oldHash, p.NarHash)
		case err == nil:
			if _, err := tx.ExecContext(ctx, `UPDATE paths SET store_path = ?, nar_id = ?,
				nar_size = ?, deriver = ?, narinfo = ?, last_used = max(last_used, ?),
				mirrored = mirrored AND ?
				WHERE hash_part = ?`,
				p.StorePath, narID, p.NarSize, p.Deriver, p.NarInfo, created, p.Mirrored, p.HashPart); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM refs WHERE referrer = ?`, p.HashPart); err != nil {
				return err
			}
		case errors.Is(err, sql.ErrNoRows):
			if _, err := tx.ExecContext(ctx, `INSERT INTO paths
				(hash_part, store_path, nar_id, nar_hash, nar_size, deriver, narinfo, created_at,
				 last_used, mirrored)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				p.HashPart, p.StorePath, narID, p.NarHash, p.NarSize, p.Deriver, p.NarInfo,
				created, created, p.Mirrored); err != nil {
				return err
			}
		default:
			return err
		}
		if len(refs) > 0 {
			if _, err := tx.ExecContext(ctx, `INSERT INTO refs (referrer, reference)
				SELECT ?, j.value FROM json_each(?) j`, p.HashPart, refsJSON); err != nil {
				return err
			}
		}
		if err := unhide(ctx, tx, p.HashPart); err != nil {
			return err
		}
		return recordChange(ctx, tx, p.HashPart)
	})
	if err != nil {
		return fmt.Errorf("sqlite catalog: publish %s: %w", p.HashPart, err)
	}
	return nil
}

// checkReferences returns a *catalog.MissingReferencesError naming the
// hash parts of the JSON array refs that are not published.
func checkReferences(ctx context.Context, tx *sql.Tx, refs string) error {
	rows, err := tx.QueryContext(ctx, `SELECT j.value FROM json_each(?) j
		WHERE NOT EXISTS (SELECT 1 FROM paths p WHERE p.hash_part = j.value)
			OR EXISTS (SELECT 1 FROM quarantine q WHERE q.hash_part = j.value)
		ORDER BY j.value`, refs)
	if err != nil {
		return err
	}
	defer rows.Close()
	var missing []string
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			return err
		}
		missing = append(missing, h)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(missing) > 0 {
		return &catalog.MissingReferencesError{HashParts: missing}
	}
	return nil
}

// NarInfo returns the rendered narinfo of a published path.
func (c *Catalog) NarInfo(ctx context.Context, hashPart string) (string, error) {
	// One indexed read of a few microseconds, never worth interrupting: a
	// context that cannot be cancelled spares database/sql and the driver
	// from watching it (an AfterFunc registration per query). A context
	// already cancelled still fails the call.
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("sqlite catalog: narinfo %s: %w", hashPart, err)
	}
	var s string
	if err := c.narInfo.QueryRowContext(context.WithoutCancel(ctx), hashPart).Scan(&s); err != nil {
		return "", fmt.Errorf("sqlite catalog: narinfo %s: %w", hashPart, notFound(err))
	}
	return s, nil
}

// Path returns the whole record of a published path.
func (c *Catalog) Path(ctx context.Context, hashPart string) (catalog.Path, error) {
	var p catalog.Path
	err := c.read(ctx, func(tx *sql.Tx) error {
		var err error
		p, err = readPath(ctx, tx, hashPart)
		return err
	})
	if err != nil {
		return catalog.Path{}, fmt.Errorf("sqlite catalog: path %s: %w", hashPart, err)
	}
	return p, nil
}

// readPath reads the whole record of a published path inside tx
// (catalog.ErrNotFound if it is not published).
func readPath(ctx context.Context, tx *sql.Tx, hashPart string) (catalog.Path, error) {
	p, err := scanPath(tx.QueryRowContext(ctx, `SELECT `+pathColumns+`
		FROM paths p JOIN nars n ON n.id = p.nar_id WHERE p.hash_part = ?`, hashPart))
	if err != nil {
		return catalog.Path{}, notFound(err)
	}
	p.References, err = queryStrings(ctx, tx,
		`SELECT reference FROM refs WHERE referrer = ? ORDER BY reference`, hashPart)
	return p, err
}

// queryStrings returns the single text column of every row of query.
func queryStrings(ctx context.Context, tx *sql.Tx, query string, args ...any) ([]string, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// WalkPaths calls fn for every published path, in hash-part order, reading
// them in batches so that no database connection is held while fn runs.
// A path published during the walk may or may not be visited; none is
// visited twice. An error from fn stops the walk and is returned as is.
func (c *Catalog) WalkPaths(ctx context.Context, fn func(catalog.Path) error) error {
	return catalog.WalkBatches("sqlite catalog: walk paths", walkBatch, catalog.PathKey, func(after string) ([]catalog.Path, error) {
		return c.pathBatch(ctx, after)
	}, fn)
}

// pathBatch reads up to walkBatch paths whose hash part sorts after after,
// with their references, from one snapshot.
func (c *Catalog) pathBatch(ctx context.Context, after string) ([]catalog.Path, error) {
	var batch []catalog.Path
	err := c.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+pathColumns+`
			FROM paths p JOIN nars n ON n.id = p.nar_id
			WHERE p.hash_part > ? ORDER BY p.hash_part LIMIT ?`, after, walkBatch)
		if err != nil {
			return err
		}
		defer rows.Close()
		index := map[string]int{}
		for rows.Next() {
			p, err := scanPath(rows)
			if err != nil {
				return err
			}
			index[p.HashPart] = len(batch)
			batch = append(batch, p)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		refs, err := tx.QueryContext(ctx, `SELECT referrer, reference FROM refs
			WHERE referrer > ? AND referrer <= ? ORDER BY referrer, reference`,
			after, batch[len(batch)-1].HashPart)
		if err != nil {
			return err
		}
		return addReferences(refs, batch, index)
	})
	return batch, err
}

// addReferences appends to paths the references that rows (referrer,
// reference) lists, index giving each referrer's position in paths;
// rows of other referrers are skipped. It closes rows.
func addReferences(rows *sql.Rows, paths []catalog.Path, index map[string]int) error {
	defer rows.Close()
	for rows.Next() {
		var from, to string
		if err := rows.Scan(&from, &to); err != nil {
			return err
		}
		if i, ok := index[from]; ok {
			paths[i].References = append(paths[i].References, to)
		}
	}
	return rows.Err()
}
