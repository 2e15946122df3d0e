package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nix-cached/cached/catalog"
)

// graphBatch is how many paths WalkGraph reads per statement.
const graphBatch = 4096

// WalkGraph calls fn for every published path, in hash-part order, with
// its references and the size of its NAR file. It reads them in batches,
// one statement each (keyset pagination), so that no connection is held
// while fn runs. A path published during the walk may or may not be
// visited; none is visited twice. An error from fn stops the walk and is
// returned as is.
func (c *Catalog) WalkGraph(ctx context.Context, fn func(catalog.GraphNode) error) error {
	return catalog.WalkBatches("postgres catalog: walk graph", graphBatch, catalog.NodeKey, func(after string) ([]catalog.GraphNode, error) {
		return c.graphBatch(ctx, after)
	}, fn)
}

// graphBatch reads up to graphBatch nodes whose hash part sorts after
// after, with their references.
func (c *Catalog) graphBatch(ctx context.Context, after string) ([]catalog.GraphNode, error) {
	var batch []catalog.GraphNode
	err := c.query(ctx, func() error {
		rows, err := c.pool.Query(ctx, `SELECT p.hash_part, p.store_path, n.key, n.file_size,
			p.created_at, p.last_used, p.mirrored,
			ARRAY(SELECT r.reference FROM refs r WHERE r.referrer = p.hash_part)
			FROM paths p JOIN nars n ON n.id = p.nar_id
			WHERE p.hash_part > $1 ORDER BY p.hash_part LIMIT $2`, after, graphBatch)
		if err != nil {
			return err
		}
		batch = make([]catalog.GraphNode, 0, graphBatch)
		var g catalog.GraphNode
		var created, used int64
		_, err = pgx.ForEachRow(rows, []any{&g.HashPart, &g.StorePath, &g.NARKey, &g.FileSize,
			&created, &used, &g.Mirrored, &g.References}, func() error {
			g.CreatedAt, g.LastUsed = catalog.FromMillis(created), catalog.FromMillis(used)
			if len(g.References) == 0 {
				g.References = nil
			}
			batch = append(batch, g)
			g.References = nil // a fresh slice for the next row
			return nil
		})
		return err
	})
	return batch, err
}

// Referrers returns the hash parts of the published paths that reference
// hashPart, itself excluded, sorted.
func (c *Catalog) Referrers(ctx context.Context, hashPart string) ([]string, error) {
	var refs []string
	err := c.query(ctx, func() error {
		var err error
		rows, err := c.pool.Query(ctx, `SELECT referrer FROM refs
			WHERE reference = $1 AND referrer <> $1 ORDER BY referrer`, hashPart)
		refs, err = collectStrings(rows, err)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres catalog: referrers of %s: %w", hashPart, err)
	}
	return refs, nil
}

// RecordUse moves the LastUsed of the named paths, and of every path whose
// NAR has one of the named keys, forward to the times given, in one
// statement that locks the rows it moves in hash-part order (so that
// batches from several replicas do not deadlock). Unknown names are
// ignored.
func (c *Catalog) RecordUse(ctx context.Context, paths, nars map[string]time.Time) error {
	if len(paths) == 0 && len(nars) == 0 {
		return ctx.Err()
	}
	pathNames, pathTimes := timeArrays(paths)
	narNames, narTimes := timeArrays(nars)
	err := c.write(ctx, func(t *txn) error {
		_, err := t.Exec(ctx, `WITH uses AS (
				SELECT h AS hash_part, u FROM unnest($1::text[], $2::int8[]) AS x(h, u)
				UNION ALL
				SELECT p.hash_part, x.u FROM unnest($3::text[], $4::int8[]) AS x(k, u)
				JOIN nars n ON n.key = x.k JOIN paths p ON p.nar_id = n.id
			), latest AS (
				SELECT hash_part, max(u) AS u FROM uses GROUP BY hash_part
			), moved AS (
				SELECT p.hash_part, l.u FROM paths p JOIN latest l ON l.hash_part = p.hash_part
				WHERE p.last_used < l.u
				ORDER BY p.hash_part FOR NO KEY UPDATE OF p
			)
			UPDATE paths p SET last_used = GREATEST(p.last_used, m.u)
			FROM moved m WHERE p.hash_part = m.hash_part`,
			pathNames, pathTimes, narNames, narTimes)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres catalog: record use of %d paths and %d NARs: %w", len(paths), len(nars), err)
	}
	return nil
}

// timeArrays splits names → times into names and Unix milliseconds.
func timeArrays(m map[string]time.Time) ([]string, []int64) {
	names := make([]string, 0, len(m))
	ms := make([]int64, 0, len(m))
	for k, t := range m {
		names = append(names, k)
		ms = append(ms, catalog.Millis(t))
	}
	return names, ms
}
