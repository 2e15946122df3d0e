package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nix-cached/cached/catalog"
)

// graphBatch is how many paths WalkGraph reads per read transaction.
const graphBatch = 4096

// WalkGraph calls fn for every published path, in hash-part order, with
// its references and the size of its NAR file, reading them in batches so
// that no database connection is held while fn runs. A path published
// during the walk may or may not be visited; none is visited twice. An
// error from fn stops the walk and is returned as is.
func (c *Catalog) WalkGraph(ctx context.Context, fn func(catalog.GraphNode) error) error {
	return catalog.WalkBatches("sqlite catalog: walk graph", graphBatch, catalog.NodeKey, func(after string) ([]catalog.GraphNode, error) {
		return c.graphBatch(ctx, after)
	}, fn)
}

// graphBatch reads up to graphBatch nodes whose hash part sorts after
// after, with their references, from one snapshot.
func (c *Catalog) graphBatch(ctx context.Context, after string) ([]catalog.GraphNode, error) {
	var batch []catalog.GraphNode
	err := c.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT p.hash_part, p.store_path, n.key, n.file_size,
			p.created_at, p.last_used, p.mirrored
			FROM paths p JOIN nars n ON n.id = p.nar_id
			WHERE p.hash_part > ? ORDER BY p.hash_part LIMIT ?`, after, graphBatch)
		if err != nil {
			return err
		}
		defer rows.Close()
		batch = make([]catalog.GraphNode, 0, graphBatch)
		for rows.Next() {
			var g catalog.GraphNode
			var created, used int64
			if err := rows.Scan(&g.HashPart, &g.StorePath, &g.NARKey, &g.FileSize,
				&created, &used, &g.Mirrored); err != nil {
				return err
			}
			g.CreatedAt, g.LastUsed = catalog.FromMillis(created), catalog.FromMillis(used)
			batch = append(batch, g)
		}
		if err := rows.Err(); err != nil || len(batch) == 0 {
			return err
		}
		return graphReferences(ctx, tx, after, batch)
	})
	return batch, err
}

// graphReferences fills in the References of batch, which is sorted by
// hash part and holds every path after after up to its last, merging it
// with the references of those paths grouped by referrer in the same
// order. A path's references are substrings of one string.
func graphReferences(ctx context.Context, tx *sql.Tx, after string, batch []catalog.GraphNode) error {
	rows, err := tx.QueryContext(ctx, `SELECT referrer, group_concat(reference, ' ') FROM refs
		WHERE referrer > ? AND referrer <= ? GROUP BY referrer ORDER BY referrer`,
		after, batch[len(batch)-1].HashPart)
	if err != nil {
		return err
	}
	defer rows.Close()
	i := 0
	for rows.Next() {
		var from, to string
		if err := rows.Scan(&from, &to); err != nil {
			return err
		}
		for i < len(batch) && batch[i].HashPart < from {
			i++
		}
		if i < len(batch) && batch[i].HashPart == from {
			batch[i].References = strings.Fields(to)
		}
	}
	return rows.Err()
}

// Referrers returns the hash parts of the published paths that reference
// hashPart, itself excluded, sorted.
func (c *Catalog) Referrers(ctx context.Context, hashPart string) ([]string, error) {
	var refs []string
	err := c.read(ctx, func(tx *sql.Tx) error {
		var err error
		refs, err = queryStrings(ctx, tx, `SELECT referrer FROM refs
			WHERE reference = ? AND referrer <> ? ORDER BY referrer`, hashPart, hashPart)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite catalog: referrers of %s: %w", hashPart, err)
	}
	return refs, nil
}

// RecordUse moves the LastUsed of the named paths, and of every path whose
// NAR has one of the named keys, forward to the times given, in one write
// transaction. Unknown names are ignored.
func (c *Catalog) RecordUse(ctx context.Context, paths, nars map[string]time.Time) error {
	if len(paths) == 0 && len(nars) == 0 {
		return ctx.Err()
	}
	pathTimes, err := timesJSON(paths)
	if err != nil {
		return fmt.Errorf("sqlite catalog: record use: %w", err)
	}
	narTimes, err := timesJSON(nars)
	if err != nil {
		return fmt.Errorf("sqlite catalog: record use: %w", err)
	}
	err = c.write(ctx, func(tx *sql.Tx) error {
		if len(paths) > 0 {
			if _, err := tx.ExecContext(ctx, `UPDATE paths SET last_used = u.t
				FROM (SELECT j.key AS h, j.value AS t FROM json_each(?) j) u
				WHERE paths.hash_part = u.h AND paths.last_used < u.t`, pathTimes); err != nil {
				return err
			}
		}
		if len(nars) > 0 {
			if _, err := tx.ExecContext(ctx, `UPDATE paths SET last_used = u.t
				FROM (SELECT n.id AS id, j.value AS t FROM json_each(?) j JOIN nars n ON n.key = j.key) u
				WHERE paths.nar_id = u.id AND paths.last_used < u.t`, narTimes); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite catalog: record use of %d paths and %d NARs: %w", len(paths), len(nars), err)
	}
	return nil
}

// timesJSON encodes names → times as a JSON object of Unix milliseconds.
func timesJSON(m map[string]time.Time) (string, error) {
	if len(m) == 0 {
		return "{}", nil
	}
	ms := make(map[string]int64, len(m))
	for k, t := range m {
		ms[k] = catalog.Millis(t)
	}
	b, err := json.Marshal(ms)
	return string(b), err
}
