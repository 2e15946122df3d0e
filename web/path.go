package web

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/storepath"
)

// ClosureCap bounds how many paths a path page walks to sum up the
// closure; beyond it, the page says "more than ClosureCap paths".
const ClosureCap = 10_000

// LinksCap bounds how many referrers a path page lists.
const LinksCap = 500

// Link is a path that another path's page links to.
type Link struct {
	HashPart  string
	StorePath string // "" when the path is not in the cache
	Self      bool   // the page's own path
}

// ClosureSum is the size of a path's closure: itself and every path it
// references, directly or not.
type ClosureSum struct {
	Paths   int   // paths in the cache, the path itself included
	NarSize int64 // the sum of their NAR sizes
	Missing int   // references the cache does not hold
	Capped  bool  // the walk stopped at ClosureCap paths
	Cap     int
}

// PathDetails is what the cache knows of a published path: the data of
// its page, and of `cached info`.
type PathDetails struct {
	catalog.Path
	Name          string
	NAR           *catalog.NAR // nil if its record is gone
	Closure       ClosureSum
	References    []Link
	Referrers     []Link
	MoreReferrers int // referrers beyond LinksCap, not listed
	Pins          []catalog.Pin
	Signatures    []string
	Listing       Listing
}

// Path is the page of the published path with this hash part: GET
// Prefix/path/<hash part>. An unknown hash part is a 404, a malformed one
// a 400. The error returned is for the request log (the page was answered
// already).
func (u *UI) Path(w http.ResponseWriter, r *http.Request, hashPart string) error {
	return u.page(w, r, func() error {
		if err := storepath.ValidateHashPart(hashPart); err != nil {
			return badRequest("not a store path hash part")
		}
		var body PathDetails
		err := u.heavy(r.Context(), func() error {
			var err error
			body, err = u.Details(r.Context(), hashPart)
			return err
		})
		if err != nil {
			return err
		}
		return u.render(w, r, http.StatusOK, pathTmpl, view{Title: body.Name + " · cached", Nav: "paths", Body: body})
	})
}

// Details gathers what the cache knows of the published path with this
// hash part (an error matching catalog.ErrNotFound if none): the data of
// its page, and of `cached info`.
func (u *UI) Details(ctx context.Context, hashPart string) (PathDetails, error) {
	p, err := u.cat.Path(ctx, hashPart)
	if err != nil {
		return PathDetails{}, fmt.Errorf("web: path %s: %w", hashPart, err)
	}
	b := PathDetails{Path: p, Name: catalog.PathName(p), Signatures: signatures(p.NarInfo)}
	n, err := u.cat.LookupNAR(ctx, p.NARKey)
	switch {
	case err == nil:
		b.NAR = &n
	case !errors.Is(err, catalog.ErrNotFound):
		return PathDetails{}, fmt.Errorf("web: NAR of %s: %w", hashPart, err)
	}
	known, err := u.walkClosure(ctx, p, &b.Closure)
	if err != nil {
		return PathDetails{}, err
	}
	if b.References, err = u.links(ctx, p.References, known, p.HashPart); err != nil {
		return PathDetails{}, err
	}
	referrers, err := u.cat.Referrers(ctx, hashPart)
	if err != nil {
		return PathDetails{}, fmt.Errorf("web: referrers of %s: %w", hashPart, err)
	}
	slices.Sort(referrers)
	if len(referrers) > LinksCap {
		b.MoreReferrers = len(referrers) - LinksCap
		referrers = referrers[:LinksCap]
	}
	if b.Referrers, err = u.links(ctx, referrers, nil, ""); err != nil {
		return PathDetails{}, err
	}
	// A referrer deleted since Referrers answered is not listed.
	b.Referrers = slices.DeleteFunc(b.Referrers, func(l Link) bool { return l.StorePath == "" })
	pins, err := u.cat.Pins(ctx)
	if err != nil {
		return PathDetails{}, fmt.Errorf("web: pins: %w", err)
	}
	for _, pin := range pins {
		if pin.HashPart == hashPart {
			b.Pins = append(b.Pins, pin)
		}
	}
	if b.NAR != nil {
		b.Listing = u.readListing(ctx, b.NAR.ListingKey)
	}
	return b, nil
}

// walkClosure sums up the closure of p into c, reading at most ClosureCap
// paths, and returns the store paths it read by hash part ("" for those
// the cache does not hold).
func (u *UI) walkClosure(ctx context.Context, p catalog.Path, c *ClosureSum) (map[string]string, error) {
	c.Cap = ClosureCap
	seen := map[string]string{p.HashPart: p.StorePath}
	c.Paths, c.NarSize = 1, p.NarSize
	var queue []string
	push := func(refs []string) {
		for _, h := range refs {
			if _, ok := seen[h]; !ok {
				seen[h] = ""
				queue = append(queue, h)
			}
		}
	}
	push(p.References)
	for len(queue) > 0 {
		if c.Paths >= ClosureCap {
			c.Capped = true
			break
		}
		h := queue[0]
		queue = queue[1:]
		ref, err := u.cat.Path(ctx, h)
		if errors.Is(err, catalog.ErrNotFound) {
			c.Missing++
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("web: closure of %s: %w", p.HashPart, err)
		}
		seen[h] = ref.StorePath
		c.Paths++
		c.NarSize += ref.NarSize
		push(ref.References)
	}
	return seen, nil
}

// links returns the paths of hashParts, ordered by name, reading from the
// catalog those known does not hold.
func (u *UI) links(ctx context.Context, hashParts []string, known map[string]string, self string) ([]Link, error) {
	out := make([]Link, 0, len(hashParts))
	for _, h := range hashParts {
		l := Link{HashPart: h, Self: h == self}
		if sp, ok := known[h]; ok && sp != "" {
			l.StorePath = sp
		} else {
			p, err := u.cat.Path(ctx, h)
			switch {
			case err == nil:
				l.StorePath = p.StorePath
			case !errors.Is(err, catalog.ErrNotFound):
				return nil, fmt.Errorf("web: path %s: %w", h, err)
			}
		}
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b Link) int {
		return cmp.Or(strings.Compare(linkName(a), linkName(b)), strings.Compare(a.HashPart, b.HashPart))
	})
	return out, nil
}

// linkName is what links are ordered by: the name, or the hash part of
// an absent path.
func linkName(l Link) string {
	if l.StorePath == "" {
		return l.HashPart
	}
	_, name, _ := strings.Cut(l.StorePath, "/"+l.HashPart+"-")
	return name
}

// signatures returns the values of a narinfo's Sig lines.
func signatures(narInfo string) []string {
	var out []string
	for line := range strings.Lines(narInfo) {
		if sig, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), "Sig: "); ok {
			out = append(out, sig)
		}
	}
	return out
}
