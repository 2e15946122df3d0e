package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/nix-cached/cached/catalog"
)

// walkBatch is how many paths WalkPaths reads per statement.
const walkBatch = 500

// pathColumns are the columns scanPath reads, for paths p joined to nars
// n, the references last.
const pathColumns = `p.hash_part, p.store_path, n.key, p.nar_hash, p.nar_size, p.deriver,
	p.narinfo, p.created_at, p.last_used, p.mirrored,
	ARRAY(SELECT r.reference FROM refs r WHERE r.referrer = p.hash_part ORDER BY r.reference)`

// scanPath reads one row of pathColumns, followed by columns read into
// extra.
func scanPath(row pgx.Row, extra ...any) (catalog.Path, error) {
	var p catalog.Path
	var created, used int64
	err := row.Scan(append([]any{&p.HashPart, &p.StorePath, &p.NARKey, &p.NarHash, &p.NarSize, &p.Deriver,
		&p.NarInfo, &created, &used, &p.Mirrored, &p.References}, extra...)...)
	p.CreatedAt, p.LastUsed = catalog.FromMillis(created), catalog.FromMillis(used)
	if len(p.References) == 0 {
		p.References = nil
	}
	return p, err
}

// Publish records p in one transaction: it checks that its NAR is ready
// and its references are published and not hidden by a quarantine, then
// inserts it or, when it is already published with the same NarHash,
// replaces everything but CreatedAt and moves LastUsed forward to
// p.CreatedAt, and records it in the change log. The references stay
// locked until the commit, so none can be deleted or quarantined in
// between, and so does the NAR, so that it cannot be marked deleting nor
// be quarantined or uploaded again. When p was hidden by a quarantine,
// it is served again if its NAR is not quarantined and none of its
// references (but itself) is hidden: a client pushed it again.
func (c *Catalog) Publish(ctx context.Context, p catalog.Path, opts catalog.PublishOptions) error {
	refs := slices.Clone(p.References)
	slices.Sort(refs)
	refs = slices.Compact(refs)
	others := slices.DeleteFunc(slices.Clone(refs), func(r string) bool { return r == p.HashPart })
	created := catalog.Millis(p.CreatedAt)
	err := c.write(ctx, func(t *txn) error {
		// One round trip for the locks and reads: path rows first, then
		// the NAR's lock (DeletePath's order), then the NAR's state.
		var found, hiddenRefs []string
		var oldHash string
		var selfErr, narErr error
		var narID int64
		b := &pgx.Batch{}
		if len(others) > 0 {
			b.Queue(`SELECT hash_part FROM paths WHERE hash_part = ANY($1)
				ORDER BY hash_part FOR KEY SHARE`, others).Query(func(rows pgx.Rows) error {
				var err error
				found, err = pgx.CollectRows(rows, pgx.RowTo[string])
				return err
			})
			if !opts.AllowIncompleteClosure {
				// Once the references are locked: no Quarantine can hide
				// one until the commit, and this sees those that did.
				b.Queue(`SELECT DISTINCT hash_part FROM quarantine WHERE hash_part = ANY($1)
					ORDER BY hash_part`, others).Query(func(rows pgx.Rows) error {
					var err error
					hiddenRefs, err = collectStrings(rows, nil)
					return err
				})
			}
		}
		b.Queue(`SELECT nar_hash FROM paths WHERE hash_part = $1 FOR NO KEY UPDATE`,
			p.HashPart).QueryRow(func(row pgx.Row) error {
			selfErr = row.Scan(&oldHash)
			return ignoreNoRows(selfErr)
		})
		locked := t.queueLock(b, blobLocks, true, p.NARKey)
		b.Queue(`SELECT id FROM nars WHERE key = $1 AND state = 'ready'
			AND quarantined_at IS NULL`, p.NARKey).
			QueryRow(func(row pgx.Row) error {
				narErr = row.Scan(&narID)
				return ignoreNoRows(narErr)
			})
		if err := t.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		locked()
		exists := selfErr == nil
		if narErr != nil {
			return fmt.Errorf("%w: %s", catalog.ErrNARNotFound, p.NARKey)
		}
		if missing := missingFrom(others, found); (len(missing) > 0 || len(hiddenRefs) > 0) &&
			!opts.AllowIncompleteClosure {
			// A hidden path counts as missing: the client pushes it again.
			missing = append(missing, hiddenRefs...)
			slices.Sort(missing)
			return &catalog.MissingReferencesError{HashParts: slices.Compact(missing)}
		}
		if exists && oldHash != p.NarHash {
			return fmt.Errorf("%w: published with %s, not %s", catalog.ErrConflict, oldHash, p.NarHash)
		}

		// One round trip for the writes.
		b = &pgx.Batch{}
		raced := false
		if exists {
			b.Queue(`UPDATE paths SET store_path = $1, nar_id = $2,
				nar_size = $3, deriver = $4, narinfo = $5, last_used = GREATEST(last_used, $6),
				mirrored = mirrored AND $8
				WHERE hash_part = $7`,
				p.StorePath, narID, p.NarSize, p.Deriver, p.NarInfo, created, p.HashPart, p.Mirrored)
			b.Queue(`DELETE FROM refs WHERE referrer = $1`, p.HashPart)
		} else {
			b.Queue(`INSERT INTO paths
				(hash_part, store_path, nar_id, nar_hash, nar_size, deriver, narinfo, created_at,
				 last_used, mirrored)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)
				ON CONFLICT (hash_part) DO NOTHING`,
				p.HashPart, p.StorePath, narID, p.NarHash, p.NarSize, p.Deriver, p.NarInfo, created, p.Mirrored).
				Exec(func(tag pgconn.CommandTag) error {
					raced = tag.RowsAffected() == 0
					return nil
				})
		}
		if len(refs) > 0 {
			b.Queue(`INSERT INTO refs (referrer, reference)
				SELECT $1, r FROM unnest($2::text[]) AS r ON CONFLICT DO NOTHING`, p.HashPart, refs)
		}
		if exists {
			// p, hidden by a quarantine, is served again unless its NAR
			// is quarantined or a reference is hidden, as in the SQLite
			// catalog (a new path has no quarantine rows). With p's row,
			// its references and its NAR locked, no Quarantine can
			// change any of that until the commit (quarantine.go).
			b.Queue(`DELETE FROM quarantine WHERE hash_part = $1
				AND NOT EXISTS (SELECT 1 FROM paths p JOIN nars n ON n.id = p.nar_id
					WHERE p.hash_part = $1 AND n.quarantined_at IS NOT NULL)
				AND NOT EXISTS (SELECT 1 FROM refs r JOIN quarantine q ON q.hash_part = r.reference
					WHERE r.referrer = $1 AND r.reference <> $1)`, p.HashPart)
		}
		queueChanges(b, []string{p.HashPart}) // last: see queueChanges
		if err := t.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		if raced {
			return errRetry // published meanwhile: start again to compare hashes
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres catalog: publish %s: %w", p.HashPart, err)
	}
	return nil
}

// ignoreNoRows returns err unless it is pgx.ErrNoRows.
func ignoreNoRows(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	return err
}

// missingFrom returns the elements of want (sorted, unique) not in have
// (sorted).
func missingFrom(want, have []string) []string {
	var missing []string
	for _, w := range want {
		if _, ok := slices.BinarySearch(have, w); !ok {
			missing = append(missing, w)
		}
	}
	return missing
}

// collectStrings reads the single text column of every row.
func collectStrings(rows pgx.Rows, err error) ([]string, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// NarInfo returns the rendered narinfo of a published path that no
// quarantined NAR hides: two indexed lookups, on a statement pgx prepares
// once per connection.
func (c *Catalog) NarInfo(ctx context.Context, hashPart string) (string, error) {
	var s string
	err := c.query(ctx, func() error {
		return c.pool.QueryRow(ctx, `SELECT narinfo FROM paths WHERE hash_part = $1
			AND NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.hash_part = paths.hash_part)`,
			hashPart).Scan(&s)
	})
	if err != nil {
		return "", fmt.Errorf("postgres catalog: narinfo %s: %w", hashPart, notFound(err))
	}
	return s, nil
}

// Path returns the whole record of a published path.
func (c *Catalog) Path(ctx context.Context, hashPart string) (catalog.Path, error) {
	var p catalog.Path
	err := c.query(ctx, func() error {
		var err error
		p, err = scanPath(c.pool.QueryRow(ctx, `SELECT `+pathColumns+`
			FROM paths p JOIN nars n ON n.id = p.nar_id WHERE p.hash_part = $1`, hashPart))
		return err
	})
	if err != nil {
		return catalog.Path{}, fmt.Errorf("postgres catalog: path %s: %w", hashPart, notFound(err))
	}
	return p, nil
}

// WalkPaths calls fn for every published path, in hash-part order, reading
// them in batches (one statement each) so that no connection is held
// while fn runs. A path published during the walk may or may not be
// visited; none is visited twice. An error from fn stops the walk and is
// returned as is.
func (c *Catalog) WalkPaths(ctx context.Context, fn func(catalog.Path) error) error {
	return catalog.WalkBatches("postgres catalog: walk paths", walkBatch, catalog.PathKey, func(after string) ([]catalog.Path, error) {
		var batch []catalog.Path
		err := c.query(ctx, func() error {
			rows, err := c.pool.Query(ctx, `SELECT `+pathColumns+`
				FROM paths p JOIN nars n ON n.id = p.nar_id
				WHERE p.hash_part > $1 ORDER BY p.hash_part LIMIT $2`, after, walkBatch)
			if err != nil {
				return err
			}
			batch, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (catalog.Path, error) { return scanPath(r) })
			return err
		})
		return batch, err
	}, fn)
}
