package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/nix-cached/cached/catalog"
)

// namedPaths is paths with the name of each store path (what follows
// "/<hash part>-") as column name, in the "C" collation so that it sorts
// bytewise, as in SQLite.
const namedPaths = `(SELECT paths.*, substr(store_path, strpos(store_path, '/' || hash_part || '-') + 34)
	COLLATE "C" AS name FROM paths)`

// SearchPaths returns up to limit published paths whose name contains
// query, ignoring ASCII case (ILIKE), ordered by name, then hash part,
// after the path whose base name is after; it reads every path's name,
// in one statement.
func (c *Catalog) SearchPaths(ctx context.Context, query, after string, limit int) ([]catalog.Path, error) {
	afterName, afterHash, ok := catalog.SearchCursor(after)
	if !ok || limit <= 0 {
		return nil, fmt.Errorf("%w: search after %q, limit %d", ErrInvalid, after, limit)
	}
	var out []catalog.Path
	err := c.query(ctx, func() error {
		rows, err := c.pool.Query(ctx, `SELECT `+pathColumns+`
			FROM `+namedPaths+` p JOIN nars n ON n.id = p.nar_id
			WHERE p.name ILIKE $1 ESCAPE '\' AND (p.name, p.hash_part) > ($2, $3)
			ORDER BY p.name, p.hash_part LIMIT $4`,
			catalog.SearchPattern(query), afterName, afterHash, limit)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (catalog.Path, error) {
			return scanPath(row)
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres catalog: search paths for %q: %w", query, err)
	}
	return out, nil
}

// GCRuns returns up to limit GC records, the latest Started first, the
// last recorded first among equals.
func (c *Catalog) GCRuns(ctx context.Context, limit int) ([]catalog.GCRun, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("%w: GC runs limit %d", ErrInvalid, limit)
	}
	var out []catalog.GCRun
	err := c.query(ctx, func() error {
		rows, err := c.pool.Query(ctx, `SELECT holder, started, finished, paths_removed,
			nars_removed, bytes_removed, live_paths, live_bytes, error
			FROM gc_runs ORDER BY started DESC, id DESC LIMIT $1`, limit)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (catalog.GCRun, error) {
			var r catalog.GCRun
			var started, finished int64
			err := row.Scan(&r.Holder, &started, &finished, &r.PathsRemoved, &r.NARsRemoved,
				&r.BytesRemoved, &r.LivePaths, &r.LiveBytes, &r.Error)
			r.Started, r.Finished = catalog.FromMillis(started), catalog.FromMillis(finished)
			return r, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres catalog: GC runs: %w", err)
	}
	return out, nil
}
