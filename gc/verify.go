// Package gc keeps the cache's metadata and blobs in agreement: Verify
// checks that every published path is servable as its narinfo claims, and
// a Collector removes what is no longer live (mark and sweep from pins and
// recently used paths through references), expired uploads and orphan
// blobs, never a narinfo's NAR before the narinfo and never what a live
// path references.
package gc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/narinfo"
	"github.com/nix-cached/cached/storage"
	"github.com/nix-cached/cached/storepath"
)

// VerifyOptions choose how deep Verify looks.
type VerifyOptions struct {
	// Contents re-reads every NAR file: its FileHash and FileSize, and that
	// it decompresses to a valid NAR with the recorded NarHash and NarSize.
	Contents bool
}

// Problem is one inconsistency found by Verify.
type Problem struct {
	HashPart  string // hash part of the broken path; "" for an unclaimed NAR
	StorePath string // the broken path; "" for an unclaimed NAR
	What      string // what is wrong, on one line
}

// String formats the problem as one line naming the path it concerns.
func (p Problem) String() string {
	if p.StorePath == "" {
		return p.What
	}
	return p.StorePath + ": " + p.What
}

// VerifyReport is what Verify checked and found.
type VerifyReport struct {
	Paths    int       // published paths checked
	NARs     int       // NAR records checked: the published paths' and unclaimed ones
	Bytes    int64     // recorded size of the NAR files checked
	Problems []Problem // in the order found
}

// Verify checks the cache's invariants. For every published path: its NAR
// record exists and agrees with it, the NAR file (and its listing, if one
// is recorded) is stored with the recorded size, every reference is
// published, and the stored narinfo parses and agrees with the records. For
// every unclaimed NAR record: its files are stored, since a later narinfo
// upload would publish it. With opt.Contents every NAR file is also re-read.
//
// It is safe to run while a server uses the same catalog and store: a
// finding that a concurrent change explains is checked again before it is
// reported. Inconsistencies are Problems; a catalog or storage failure that
// leaves a check undecided ends Verify with an error.
func Verify(ctx context.Context, cat catalog.Catalog, store storage.Store, opt VerifyOptions) (VerifyReport, error) {
	v := &verifier{
		cat:       cat,
		store:     store,
		opt:       opt,
		published: make(map[string]struct{}),
		nars:      make(map[string]*narCheck),
	}
	var checkErr error
	err := cat.WalkPaths(ctx, func(p catalog.Path) error {
		if err := ctx.Err(); err != nil {
			checkErr = fmt.Errorf("gc: verify: %w", err)
			return err
		}
		v.published[p.HashPart] = struct{}{}
		checkErr = v.path(ctx, p)
		return checkErr
	})
	if checkErr != nil {
		return v.rep, checkErr
	}
	if err != nil {
		return v.rep, fmt.Errorf("gc: verify: walking published paths: %w", err)
	}
	if err := v.references(ctx); err != nil {
		return v.rep, err
	}
	if err := v.unclaimed(ctx); err != nil {
		return v.rep, err
	}
	quarantined, err := cat.Quarantined(ctx)
	if err != nil {
		return v.rep, fmt.Errorf("gc: verify: %w", err)
	}
	for _, q := range quarantined {
		why := "its NAR " + q.NARKey
		if p, err := cat.Path(ctx, q.HashPart); err != nil || p.NARKey != q.NARKey {
			why = "the NAR " + q.NARKey + " in its closure"
		}
		v.rep.Problems = append(v.rep.Problems, Problem{HashPart: q.HashPart, StorePath: q.StorePath,
			What: oneLine(fmt.Sprintf("quarantined: not served since %s, because %s is damaged (%s); pushing it again restores it",
				q.Since.UTC().Format(time.RFC3339), why, q.Reason))})
	}
	return v.rep, nil
}

// verifier holds the state of one Verify run.
type verifier struct {
	cat       catalog.Catalog
	store     storage.Store
	opt       VerifyOptions
	rep       VerifyReport
	published map[string]struct{}  // hash parts seen by the walk
	nars      map[string]*narCheck // NAR checks by key, each done once
	pending   []pendingRefs        // references not yet seen by the walk
}

// narCheck is the outcome of checking one NAR key.
type narCheck struct {
	rec    catalog.NAR
	found  bool     // the record exists
	issues []string // problems with its files
}

// pendingRefs are the references the walk had not reached when it saw a
// path. Only a few strings are kept: a large cache has many of them.
type pendingRefs struct {
	hashPart, storePath string
	refs                []string // hash parts
}

// path checks one published path and reports its problems, after making
// sure they are not explained by a concurrent change to the path.
func (v *verifier) path(ctx context.Context, p catalog.Path) error {
	issues, err := v.checkPath(ctx, p, false)
	if err != nil {
		return err
	}
	if len(issues) > 0 {
		fresh, err := v.cat.Path(ctx, p.HashPart)
		switch {
		case errors.Is(err, catalog.ErrNotFound):
			return nil // deleted meanwhile
		case err != nil:
			return fmt.Errorf("gc: verify: re-reading %s: %w", p.StorePath, err)
		}
		// Check the current record again, bypassing what was learned
		// about its NAR during the walk.
		if issues, err = v.checkPath(ctx, fresh, true); err != nil {
			return err
		}
		p = fresh
	}
	v.rep.Paths++
	for _, what := range issues {
		v.problem(p, what)
	}
	var unseen []string
	for _, ref := range p.References {
		if _, ok := v.published[ref]; !ok && ref != p.HashPart {
			unseen = append(unseen, ref)
		}
	}
	if unseen != nil {
		v.pending = append(v.pending, pendingRefs{hashPart: p.HashPart, storePath: p.StorePath, refs: unseen})
	}
	return nil
}

// checkPath returns the problems of one path record. With fresh set, its
// NAR is checked anew.
func (v *verifier) checkPath(ctx context.Context, p catalog.Path, fresh bool) ([]string, error) {
	var issues []string
	if sp, err := storepath.ParseBase(p.StorePath[strings.LastIndexByte(p.StorePath, '/')+1:]); err != nil || sp.Hash != p.HashPart {
		issues = append(issues, fmt.Sprintf("record's store path does not have hash part %s", p.HashPart))
	}
	nc, err := v.nar(ctx, p.NARKey, fresh)
	if err != nil {
		return nil, err
	}
	var rec *catalog.NAR
	if !nc.found {
		issues = append(issues, fmt.Sprintf("its NAR record %s is missing", p.NARKey))
	} else {
		rec = &nc.rec
		if rec.NarHash != p.NarHash || rec.NarSize != p.NarSize {
			issues = append(issues, fmt.Sprintf("NarHash/NarSize %s/%d differ from its NAR record's %s/%d",
				p.NarHash, p.NarSize, rec.NarHash, rec.NarSize))
		}
		issues = append(issues, nc.issues...)
	}
	return append(issues, checkNarInfo(p, rec)...), nil
}

// checkNarInfo compares the stored narinfo text with the records.
func checkNarInfo(p catalog.Path, rec *catalog.NAR) []string {
	ni, err := narinfo.Parse([]byte(p.NarInfo))
	if err != nil {
		return []string{fmt.Sprintf("stored narinfo does not parse: %v", err)}
	}
	var issues []string
	differ := func(field, got, want string) {
		if got != want {
			issues = append(issues, fmt.Sprintf("narinfo %s %q differs from the record's %q", field, got, want))
		}
	}
	differ("StorePath", ni.StorePath, p.StorePath)
	differ("URL", ni.URL, p.NARKey)
	differ("NarHash", ni.NarHash.String(), p.NarHash)
	if ni.NarSize != uint64(p.NarSize) {
		differ("NarSize", fmt.Sprint(ni.NarSize), fmt.Sprint(p.NarSize))
	}
	refs := make([]string, 0, len(ni.References))
	for _, r := range ni.References {
		sp, err := storepath.ParseBase(r)
		if err != nil {
			issues = append(issues, fmt.Sprintf("narinfo reference %q: %v", r, err))
			continue
		}
		refs = append(refs, sp.Hash)
	}
	if refs, recRefs := sortedSet(refs), sortedSet(p.References); !slices.Equal(refs, recRefs) {
		differ("References", strings.Join(refs, " "), strings.Join(recRefs, " "))
	}
	if rec != nil {
		differ("Compression", ni.Compression, rec.Compression)
		if !ni.FileHash.IsZero() {
			differ("FileHash", ni.FileHash.String(), rec.FileHash)
		}
		if ni.FileSize != 0 && ni.FileSize != uint64(rec.FileSize) {
			differ("FileSize", fmt.Sprint(ni.FileSize), fmt.Sprint(rec.FileSize))
		}
	}
	return issues
}

func sortedSet(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

// nar returns the check of the NAR stored under key, doing it on first use
// (or again, when fresh is set).
func (v *verifier) nar(ctx context.Context, key string, fresh bool) (*narCheck, error) {
	if nc, ok := v.nars[key]; ok && !fresh {
		return nc, nil
	}
	nc := &narCheck{}
	rec, err := v.cat.LookupNAR(ctx, key)
	switch {
	case errors.Is(err, catalog.ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("gc: verify: looking up NAR %s: %w", key, err)
	default:
		nc.rec, nc.found = rec, true
		if nc.issues, err = v.files(ctx, rec); err != nil {
			return nil, err
		}
		if _, seen := v.nars[key]; !seen {
			v.rep.NARs++
			v.rep.Bytes += rec.FileSize
		}
	}
	v.nars[key] = nc
	return nc, nil
}

// files checks the stored files of a NAR record.
func (v *verifier) files(ctx context.Context, n catalog.NAR) ([]string, error) {
	var issues []string
	info, err := v.store.Stat(ctx, n.Key)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		issues = append(issues, fmt.Sprintf("NAR file %s is missing", n.Key))
	case err != nil:
		return nil, fmt.Errorf("gc: verify: %w", err)
	case info.Size != n.FileSize:
		issues = append(issues, fmt.Sprintf("NAR file %s has %d bytes, the record says %d", n.Key, info.Size, n.FileSize))
	case v.opt.Contents:
		what, err := checkContents(ctx, v.store, n)
		if err != nil {
			return nil, err
		}
		issues = append(issues, what...)
	}
	if n.ListingKey != "" {
		_, err := v.store.Stat(ctx, n.ListingKey)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			issues = append(issues, fmt.Sprintf("listing file %s of NAR %s is missing", n.ListingKey, n.Key))
		case err != nil:
			return nil, fmt.Errorf("gc: verify: %w", err)
		}
	}
	return issues, nil
}

// references reports references that were not published when the walk
// passed them and still are not.
func (v *verifier) references(ctx context.Context) error {
	for _, pr := range v.pending {
		var referrer *catalog.Path
		for _, ref := range pr.refs {
			if _, ok := v.published[ref]; ok {
				continue
			}
			_, err := v.cat.Path(ctx, ref)
			switch {
			case err == nil:
				continue // published while the walk went on
			case !errors.Is(err, catalog.ErrNotFound):
				return fmt.Errorf("gc: verify: looking up reference %s of %s: %w", ref, pr.storePath, err)
			}
			if referrer == nil {
				p, err := v.cat.Path(ctx, pr.hashPart)
				if errors.Is(err, catalog.ErrNotFound) {
					break // the referrer went away too
				} else if err != nil {
					return fmt.Errorf("gc: verify: re-reading %s: %w", pr.storePath, err)
				}
				referrer = &p
			}
			v.problem(*referrer, fmt.Sprintf("reference %s is not published", refName(referrer.NarInfo, ref)))
		}
	}
	return nil
}

// refName returns the basename a narinfo gives the reference with this
// hash part, or the hash part.
func refName(text, ref string) string {
	if ni, err := narinfo.Parse([]byte(text)); err == nil {
		for _, r := range ni.References {
			if strings.HasPrefix(r, ref+"-") {
				return r
			}
		}
	}
	return ref
}

// unclaimed checks the NAR records that no path names yet: Publish only
// checks the record, so a record whose file is gone would be published
// without its NAR.
func (v *verifier) unclaimed(ctx context.Context) error {
	// Records are stamped after their upload; an hour ahead covers any
	// clock step while Verify runs.
	nars, err := v.cat.UnclaimedNARs(ctx, time.Now().Add(time.Hour))
	if err != nil {
		return fmt.Errorf("gc: verify: listing unclaimed NARs: %w", err)
	}
	for _, n := range nars {
		if _, seen := v.nars[n.Key]; seen {
			continue
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("gc: verify: %w", err)
		}
		issues, err := v.files(ctx, n)
		if err != nil {
			return err
		}
		if len(issues) > 0 {
			// The sweeper removes a record and then its files.
			fresh, err := v.cat.LookupNAR(ctx, n.Key)
			switch {
			case errors.Is(err, catalog.ErrNotFound):
				continue
			case err != nil:
				return fmt.Errorf("gc: verify: looking up NAR %s: %w", n.Key, err)
			}
			if issues, err = v.files(ctx, fresh); err != nil {
				return err
			}
			n = fresh
		}
		v.nars[n.Key] = &narCheck{rec: n, found: true, issues: issues}
		v.rep.NARs++
		v.rep.Bytes += n.FileSize
		for _, what := range issues {
			v.rep.Problems = append(v.rep.Problems, Problem{What: "unclaimed NAR record: " + oneLine(what)})
		}
	}
	return nil
}

func (v *verifier) problem(p catalog.Path, what string) {
	v.rep.Problems = append(v.rep.Problems, Problem{HashPart: p.HashPart, StorePath: p.StorePath, What: oneLine(what)})
}

// oneLine keeps a message on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
