package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/nix-cached/cached/catalog"
)

// namedPaths is paths with the name of each store path (what follows
// "/<hash part>-") as column name.
const namedPaths = `(SELECT *, substr(store_path, instr(store_path, '/' || hash_part || '-') + 34) AS name
	FROM paths)`

// SearchPaths returns up to limit published paths whose name contains
// query, ignoring ASCII case (SQLite's LIKE), ordered by name, then hash
// part, after the path whose base name is after; it reads every path's
// name, in one snapshot.
func (c *Catalog) SearchPaths(ctx context.Context, query, after string, limit int) ([]catalog.Path, error) {
	afterName, afterHash, ok := catalog.SearchCursor(after)
	if !ok || limit <= 0 {
		return nil, fmt.Errorf("%w: search after %q, limit %d", ErrInvalid, after, limit)
	}
	var out []catalog.Path
	err := c.read(ctx, func(tx *sql.Tx) error {
		out = nil
		rows, err := tx.QueryContext(ctx, `SELECT `+pathColumns+`
			FROM `+namedPaths+` p JOIN nars n ON n.id = p.nar_id
			WHERE p.name LIKE ? ESCAPE '\' AND (p.name, p.hash_part) > (?, ?)
			ORDER BY p.name, p.hash_part LIMIT ?`,
			catalog.SearchPattern(query), afterName, afterHash, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		index := map[string]int{}
		var hashes []string
		for rows.Next() {
			p, err := scanPath(rows)
			if err != nil {
				return err
			}
			index[p.HashPart] = len(out)
			hashes = append(hashes, p.HashPart)
			out = append(out, p)
		}
		if err := rows.Err(); err != nil || len(out) == 0 {
			return err
		}
		refs, err := tx.QueryContext(ctx, `SELECT referrer, reference FROM refs
			WHERE referrer IN (SELECT value FROM json_each(?)) ORDER BY referrer, reference`,
			jsonList(hashes))
		if err != nil {
			return err
		}
		return addReferences(refs, out, index)
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite catalog: search paths for %q: %w", query, err)
	}
	return out, nil
}

// GCRuns returns up to limit GC records, the latest Started first, the
// last recorded first among equals.
func (c *Catalog) GCRuns(ctx context.Context, limit int) ([]catalog.GCRun, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("%w: GC runs limit %d", ErrInvalid, limit)
	}
	rows, err := c.reader.QueryContext(ctx, `SELECT holder, started, finished, paths_removed,
		nars_removed, bytes_removed, live_paths, live_bytes, error
		FROM gc_runs ORDER BY started DESC, id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite catalog: GC runs: %w", err)
	}
	defer rows.Close()
	var out []catalog.GCRun
	for rows.Next() {
		var r catalog.GCRun
		var started, finished int64
		if err := rows.Scan(&r.Holder, &started, &finished, &r.PathsRemoved, &r.NARsRemoved,
			&r.BytesRemoved, &r.LivePaths, &r.LiveBytes, &r.Error); err != nil {
			return nil, fmt.Errorf("sqlite catalog: GC runs: %w", err)
		}
		r.Started, r.Finished = catalog.FromMillis(started), catalog.FromMillis(finished)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite catalog: GC runs: %w", err)
	}
	return out, nil
}
