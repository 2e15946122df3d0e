// Package deletion judges a batch of path deletions the way every catalog
// implementation must: in the order given, a path deleted earlier in the
// batch no longer referring to later ones. The implementations read the
// batch's paths, referrers and pins in a few set-based queries, let Judge
// decide, delete what it accepted, and let Assign hand out the NARs and
// build logs the batch left without a path.
package deletion

import (
	"fmt"
	"slices"
	"strings"

	"github.com/nix-cached/cached/catalog"
)

// MaxNamed is how many referrers a refusal names.
const MaxNamed = 8

// TimeFormat is how refusals print times.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// Victim is what an implementation reads of a published path before
// judging its deletion.
type Victim struct {
	Path    catalog.Path
	Listing string   // its NAR's listing key
	Outside int      // referrers outside the batch, itself excluded
	Named   []string // the first MaxNamed+1 of them, sorted
	Inside  []string // referrers in the batch, itself excluded
	Pins    []string // names of the pins that keep it, sorted
}

// Plan is Judge's verdict on a batch.
type Plan struct {
	// Results has one entry per hash part given, in order: the path
	// deleted, or the refusal (catalog.ErrNotFound for a path not
	// published or named twice).
	Results []catalog.DeleteResult
	// Gone are the hash parts to delete, with their NARs' keys and
	// listing keys in the same order, and the derivers they had.
	Gone, Keys, Listings, Derivers []string
}

// Delete runs a batch: read returns the published paths among hashParts,
// Judge decides, and remove deletes what was accepted, returning the NARs
// it marked deleting by key and the derivers no path has any more, which
// Assign hands out.
func Delete(hashParts []string, cond catalog.DeleteCondition,
	read func() (map[string]*Victim, error),
	remove func(Plan) (map[string]catalog.NAR, map[string]bool, error)) ([]catalog.DeleteResult, error) {
	found, err := read()
	if err != nil {
		return nil, err
	}
	plan := Judge(hashParts, found, cond)
	if len(plan.Gone) == 0 {
		return plan.Results, nil
	}
	marked, orphans, err := remove(plan)
	if err != nil {
		return nil, err
	}
	return plan.Assign(marked, orphans), nil
}

// Judge decides the deletion of hashParts in order, found holding the
// published ones.
func Judge(hashParts []string, found map[string]*Victim, cond catalog.DeleteCondition) Plan {
	p := Plan{Results: make([]catalog.DeleteResult, len(hashParts))}
	deleted := map[string]bool{}
	for i, h := range hashParts {
		v, ok := found[h]
		if !ok || deleted[h] {
			p.Results[i].Err = catalog.ErrNotFound
			continue
		}
		if p.Results[i].Err = judge(v, deleted, cond); p.Results[i].Err != nil {
			continue
		}
		deleted[h] = true
		p.Results[i].Path = v.Path
		p.Gone = append(p.Gone, h)
		p.Keys = append(p.Keys, v.Path.NARKey)
		p.Listings = append(p.Listings, v.Listing)
		if v.Path.Deriver != "" {
			p.Derivers = append(p.Derivers, v.Path.Deriver)
		}
	}
	return p
}

// Assign gives each NAR marked deleting (by key) and each deriver no path
// has any more to the last path of the batch that had it, as deleting the
// paths one at a time would.
func (p Plan) Assign(marked map[string]catalog.NAR, orphans map[string]bool) []catalog.DeleteResult {
	out := p.Results
	for i := len(out) - 1; i >= 0; i-- {
		if out[i].Err != nil {
			continue
		}
		if n, ok := marked[out[i].Path.NARKey]; ok {
			out[i].NAR = &n
			delete(marked, out[i].Path.NARKey)
		}
		if d := out[i].Path.Deriver; d != "" && orphans[d] {
			out[i].OrphanLog = d
			delete(orphans, d)
		}
	}
	return out
}

// judge returns the refusal of a path's deletion, after the paths in
// deleted are gone, or nil.
func judge(v *Victim, deleted map[string]bool, cond catalog.DeleteCondition) error {
	refs := slices.Clone(v.Named)
	total := v.Outside
	for _, r := range v.Inside {
		if !deleted[r] {
			refs = append(refs, r)
			total++
		}
	}
	slices.Sort(refs)
	p := v.Path
	switch {
	case total > MaxNamed:
		return fmt.Errorf("%w: by %s and %d more", catalog.ErrReferenced,
			strings.Join(refs[:MaxNamed], " "), total-MaxNamed)
	case total > 0:
		return fmt.Errorf("%w: by %s", catalog.ErrReferenced, strings.Join(refs, " "))
	case len(v.Pins) > 0:
		return fmt.Errorf("%w: by %s", catalog.ErrPinned, strings.Join(v.Pins, " "))
	case !cond.CreatedBefore.IsZero() && !p.CreatedAt.Before(cond.CreatedBefore):
		return fmt.Errorf("%w: published at %s, not before %s", catalog.ErrKept,
			p.CreatedAt.Format(TimeFormat), cond.CreatedBefore.Format(TimeFormat))
	case !cond.UsedBefore.IsZero() && !p.LastUsed.Before(cond.UsedBefore):
		return fmt.Errorf("%w: used at %s, not before %s", catalog.ErrKept,
			p.LastUsed.Format(TimeFormat), cond.UsedBefore.Format(TimeFormat))
	}
	return nil
}

// PinsBefore is the expiry a pin must exceed to keep its path: a pin that
// expired by cond.CreatedBefore (the caller's now) does not pin, and
// without a time every pin does.
func PinsBefore(cond catalog.DeleteCondition) int64 {
	if cond.CreatedBefore.IsZero() {
		return -1 << 63
	}
	return cond.CreatedBefore.UnixMilli()
}

// NARsBefore is the creation time a NAR must precede to go with its last
// path: cond.CreatedBefore, or any time without one.
func NARsBefore(cond catalog.DeleteCondition) int64 {
	if cond.CreatedBefore.IsZero() {
		return 1<<63 - 1
	}
	return cond.CreatedBefore.UnixMilli()
}
