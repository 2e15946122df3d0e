package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/nix-cached/cached/catalog"
)

// maxNamed is how many referrers a refusal of DeletePath names.
const maxNamed = 8

// DeletePath removes a published path, its references, its realisations
// and, with cond.IgnorePins, its pins, in one write transaction that also
// records it in the change log. It refuses with catalog.ErrReferenced
// (naming referrers), catalog.ErrPinned or catalog.ErrKept, in that order
// of checks. A pin whose expiry is at or
// before a non-zero cond.CreatedBefore (the caller's idea of now) no longer
// pins and goes with the path; with a zero CreatedBefore every pin counts.
// The NAR is marked deleting and returned when no path names it any more,
// it is ready with no upload of it under way, and it was created before a
// non-zero cond.CreatedBefore.
func (c *Catalog) DeletePath(ctx context.Context, hashPart string, cond catalog.DeleteCondition) (catalog.Deleted, error) {
	var d catalog.Deleted
	err := c.write(ctx, func(tx *sql.Tx) error {
		var err error
		d, err = deletePath(ctx, tx, hashPart, cond)
		return err
	})
	if err != nil {
		return catalog.Deleted{}, fmt.Errorf("sqlite catalog: delete path %s: %w", hashPart, err)
	}
	return d, nil
}

// DeletePaths deletes paths in the order given in one write transaction;
// a refusal is reported in the path's result, any other error undoes the
// batch.
func (c *Catalog) DeletePaths(ctx context.Context, hashParts []string, cond catalog.DeleteCondition) ([]catalog.DeleteResult, error) {
	var out []catalog.DeleteResult
	err := c.write(ctx, func(tx *sql.Tx) error {
		out = make([]catalog.DeleteResult, 0, len(hashParts))
		for _, h := range hashParts {
			d, err := deletePath(ctx, tx, h, cond)
			if err != nil && !isRefusal(err) {
				return fmt.Errorf("%s: %w", h, err)
			}
			if err != nil {
				err = fmt.Errorf("sqlite catalog: delete path %s: %w", h, err)
			}
			out = append(out, catalog.DeleteResult{Deleted: d, Err: err})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite catalog: delete paths: %w", err)
	}
	return out, nil
}

// isRefusal reports whether err is one of DeletePath's refusals, which
// leave the transaction untouched.
func isRefusal(err error) bool {
	for _, r := range []error{catalog.ErrNotFound, catalog.ErrReferenced, catalog.ErrPinned, catalog.ErrKept} {
		if errors.Is(err, r) {
			return true
		}
	}
	return false
}

// deletePath is DeletePath inside tx. Its refusals come before any write.
func deletePath(ctx context.Context, tx *sql.Tx, hashPart string, cond catalog.DeleteCondition) (catalog.Deleted, error) {
	p, err := readPath(ctx, tx, hashPart)
	if err != nil {
		return catalog.Deleted{}, err
	}
	if err := checkReferrers(ctx, tx, hashPart); err != nil {
		return catalog.Deleted{}, err
	}
	if !cond.IgnorePins {
		if err := checkPins(ctx, tx, hashPart, cond); err != nil {
			return catalog.Deleted{}, err
		}
	}
	switch {
	case !cond.CreatedBefore.IsZero() && !p.CreatedAt.Before(cond.CreatedBefore):
		return catalog.Deleted{}, fmt.Errorf("%w: published at %s, not before %s", catalog.ErrKept,
			p.CreatedAt.Format(timeFormat), cond.CreatedBefore.Format(timeFormat))
	case !cond.UsedBefore.IsZero() && !p.LastUsed.Before(cond.UsedBefore):
		return catalog.Deleted{}, fmt.Errorf("%w: used at %s, not before %s", catalog.ErrKept,
			p.LastUsed.Format(timeFormat), cond.UsedBefore.Format(timeFormat))
	}

	var narID int64
	if err := tx.QueryRowContext(ctx, `SELECT nar_id FROM paths WHERE hash_part = ?`, hashPart).
		Scan(&narID); err != nil {
		return catalog.Deleted{}, err
	}
	for _, q := range []string{
		`DELETE FROM refs WHERE referrer = ?`,
		`DELETE FROM realisations WHERE out_hash = ?`,
		`DELETE FROM pins WHERE hash_part = ?`,
		`DELETE FROM paths WHERE hash_part = ?`,
	} {
		if _, err := tx.ExecContext(ctx, q, hashPart); err != nil {
			return catalog.Deleted{}, err
		}
	}
	if err := recordChange(ctx, tx, hashPart); err != nil {
		return catalog.Deleted{}, err
	}
	d := catalog.Deleted{Path: p}

	// The NAR goes when this was its last path, unless it is younger than
	// the caller's judgement or an upload of it is under way.
	createdBefore := int64(1<<63 - 1)
	if !cond.CreatedBefore.IsZero() {
		createdBefore = cond.CreatedBefore.UnixMilli()
	}
	n, err := scanNAR(tx.QueryRowContext(ctx, `UPDATE nars AS n SET state = 'deleting'
		WHERE n.id = ? AND n.state = 'ready' AND n.uploads = 0 AND n.created_at < ?
		AND NOT EXISTS (SELECT 1 FROM paths p WHERE p.nar_id = n.id)
		RETURNING `+narReturning, narID, createdBefore))
	switch {
	case err == nil:
		d.NAR = &n
	case !errors.Is(err, sql.ErrNoRows):
		return catalog.Deleted{}, err
	}

	if p.Deriver != "" {
		var shared bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM paths WHERE deriver = ?)`,
			p.Deriver).Scan(&shared); err != nil {
			return catalog.Deleted{}, err
		}
		if !shared {
			d.OrphanLog = p.Deriver
		}
	}
	return d, nil
}

// timeFormat is how refusals print times.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

// checkReferrers fails with catalog.ErrReferenced, naming the first
// referrers, when a path other than hashPart itself references it.
func checkReferrers(ctx context.Context, tx *sql.Tx, hashPart string) error {
	refs, err := queryStrings(ctx, tx, `SELECT referrer FROM refs
		WHERE reference = ? AND referrer <> ? ORDER BY referrer LIMIT ?`, hashPart, hashPart, maxNamed+1)
	if err != nil || len(refs) == 0 {
		return err
	}
	more := ""
	if len(refs) > maxNamed {
		var total int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM refs
			WHERE reference = ? AND referrer <> ?`, hashPart, hashPart).Scan(&total); err != nil {
			return err
		}
		refs = refs[:maxNamed]
		more = fmt.Sprintf(" and %d more", total-maxNamed)
	}
	return fmt.Errorf("%w: by %s%s", catalog.ErrReferenced, strings.Join(refs, " "), more)
}

// checkPins fails with catalog.ErrPinned, naming the pins, when a pin of
// hashPart has no expiry, or cond.CreatedBefore is zero, or it expires
// after cond.CreatedBefore.
func checkPins(ctx context.Context, tx *sql.Tx, hashPart string, cond catalog.DeleteCondition) error {
	now := int64(-1 << 63)
	if !cond.CreatedBefore.IsZero() {
		now = cond.CreatedBefore.UnixMilli()
	}
	names, err := queryStrings(ctx, tx, `SELECT DISTINCT name FROM pins
		WHERE hash_part = ? AND (expires_at IS NULL OR expires_at > ?) ORDER BY name`, hashPart, now)
	if err != nil || len(names) == 0 {
		return err
	}
	return fmt.Errorf("%w: by %s", catalog.ErrPinned, strings.Join(names, " "))
}
