package gc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nix-cached/cached/catalog"
)

// forceAttempts bounds how often a forced removal starts over because a
// new referrer was published while it ran.
const forceAttempts = 5

// RemovePath removes one published path (`cached path rm`), its NAR when
// no other path names it, and its build log. It refuses with an error
// matching catalog.ErrReferenced (naming the referrers) when another path
// references it, or catalog.ErrPinned when it is pinned, unless force is
// set: then every path that references it, directly or not, goes too,
// referrers first, pins included, so no remaining closure is broken. It
// returns what it removed, in order, and holds the collector's lock.
func (c *Collector) RemovePath(ctx context.Context, hashPart string, force bool) ([]Doomed, error) {
	var out []Doomed
	err := c.locked(ctx, func(ctx context.Context) error {
		var b burial
		err := c.removePath(ctx, hashPart, force, &b, &out)
		if len(b.dels) == 0 {
			return err
		}
		// The paths are gone: their blobs go after the grace, even when
		// a later removal failed.
		if werr := sleepUntil(ctx, time.Now().Add(c.grace())); werr != nil {
			return errors.Join(err, fmt.Errorf("gc: waiting to delete blobs: %w", werr))
		}
		return errors.Join(err, c.bury(ctx, b, &Result{}))
	})
	return out, err
}

// removePath is RemovePath under the lock; what it deleted is added to b.
func (c *Collector) removePath(ctx context.Context, hashPart string, force bool, b *burial, out *[]Doomed) error {
	if force {
		return c.removeWithReferrers(ctx, hashPart, b, out)
	}
	del, err := c.cat.DeletePath(ctx, hashPart, catalog.DeleteCondition{})
	switch {
	case errors.Is(err, catalog.ErrReferenced):
		return c.referencedError(ctx, hashPart, err)
	case errors.Is(err, catalog.ErrPinned):
		return fmt.Errorf("gc: %s is pinned (remove its pins first, or force): %w",
			c.storePath(ctx, hashPart), catalog.ErrPinned)
	case err != nil:
		return fmt.Errorf("gc: removing %s: %w", hashPart, err)
	}
	c.removed(ctx, del, "removed on request", b, out)
	return nil
}

// removed reports a path RemovePath deleted and adds its blobs to b.
func (c *Collector) removed(ctx context.Context, del catalog.Deleted, reason string, b *burial, out *[]Doomed) {
	d := Doomed{
		HashPart:  del.Path.HashPart,
		StorePath: del.Path.StorePath,
		CreatedAt: del.Path.CreatedAt,
		LastUsed:  del.Path.LastUsed,
		Reason:    reason,
	}
	if del.NAR != nil {
		d.FileSize = del.NAR.FileSize
	} else if n, err := c.cat.LookupNAR(ctx, del.Path.NARKey); err == nil {
		d.FileSize = n.FileSize // still named by another path
	}
	*out = append(*out, d)
	b.dels = append(b.dels, del)
	c.opt.Logger.Info("gc: removed a path", "path", d.StorePath, "reason", reason)
}

// storePath returns the store path of hashPart for a message, or the hash
// part when it cannot be read.
func (c *Collector) storePath(ctx context.Context, hashPart string) string {
	if p, err := c.cat.Path(ctx, hashPart); err == nil {
		return p.StorePath
	}
	return hashPart
}

// referencedError names the paths that reference hashPart.
func (c *Collector) referencedError(ctx context.Context, hashPart string, err error) error {
	refs, rerr := c.cat.Referrers(ctx, hashPart)
	if rerr != nil || len(refs) == 0 {
		return fmt.Errorf("gc: %s: %w", c.storePath(ctx, hashPart), err)
	}
	slices.Sort(refs)
	const show = 5
	names := make([]string, 0, show)
	for _, r := range refs[:min(len(refs), show)] {
		names = append(names, c.storePath(ctx, r))
	}
	more := ""
	if len(refs) > show {
		more = fmt.Sprintf(" and %d more", len(refs)-show)
	}
	return fmt.Errorf("gc: %s is referenced by %s%s (remove them first, or force): %w",
		c.storePath(ctx, hashPart), strings.Join(names, ", "), more, catalog.ErrReferenced)
}

// removeWithReferrers removes hashPart and everything that references it,
// starting over when a referrer appears meanwhile.
func (c *Collector) removeWithReferrers(ctx context.Context, hashPart string, b *burial, out *[]Doomed) error {
	for attempt := 0; attempt < forceAttempts; attempt++ {
		order, err := c.referrerClosure(ctx, hashPart)
		if err != nil {
			return err
		}
		if len(order) == 0 {
			if len(*out) == 0 {
				return fmt.Errorf("gc: removing %s: %w", hashPart, catalog.ErrNotFound)
			}
			return nil
		}
		target := order[len(order)-1].StorePath
		again := false
		for _, p := range order {
			del, err := c.cat.DeletePath(ctx, p.HashPart, catalog.DeleteCondition{IgnorePins: true})
			switch {
			case errors.Is(err, catalog.ErrNotFound):
				continue
			case errors.Is(err, catalog.ErrReferenced):
				again = true // published since the referrers were read
			case err != nil:
				return fmt.Errorf("gc: removing %s: %w", p.StorePath, err)
			}
			if again {
				break
			}
			reason := "removed on request"
			if p.HashPart != hashPart {
				reason = "depends on " + target + ", removed on request"
			}
			c.removed(ctx, del, reason, b, out)
		}
		if !again {
			return nil
		}
	}
	return fmt.Errorf("gc: removing %s: new referrers kept appearing: %w", hashPart, catalog.ErrReferenced)
}

// referrerClosure returns hashPart and every path that references it,
// directly or not, ordered so that each comes before what it references;
// hashPart is last. It is empty when hashPart is not published.
func (c *Collector) referrerClosure(ctx context.Context, hashPart string) ([]catalog.Path, error) {
	members := make(map[string]catalog.Path)
	queue := []string{hashPart}
	for len(queue) > 0 {
		h := queue[0]
		queue = queue[1:]
		if _, ok := members[h]; ok {
			continue
		}
		p, err := c.cat.Path(ctx, h)
		if errors.Is(err, catalog.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("gc: reading %s: %w", h, err)
		}
		members[h] = p
		refs, err := c.cat.Referrers(ctx, h)
		if err != nil {
			return nil, fmt.Errorf("gc: finding the referrers of %s: %w", p.StorePath, err)
		}
		queue = append(queue, refs...)
	}
	if _, ok := members[hashPart]; !ok {
		return nil, nil
	}
	// Kahn's algorithm: a path is ready when no remaining member
	// references it.
	indeg := make(map[string]int, len(members))
	for h, p := range members {
		for _, r := range p.References {
			if _, ok := members[r]; ok && r != h {
				indeg[r]++
			}
		}
	}
	var ready []string
	for h := range members {
		if indeg[h] == 0 {
			ready = append(ready, h)
		}
	}
	slices.Sort(ready)
	order := make([]catalog.Path, 0, len(members))
	for len(ready) > 0 {
		h := ready[0]
		ready = ready[1:]
		p := members[h]
		delete(members, h)
		order = append(order, p)
		for _, r := range p.References {
			if _, ok := members[r]; ok && r != h {
				if indeg[r]--; indeg[r] == 0 {
					ready = append(ready, r)
				}
			}
		}
	}
	// A reference cycle (never in a real store) would leave members out:
	// append them, the catalog refuses what is still referenced.
	rest := make([]string, 0, len(members))
	for h := range members {
		rest = append(rest, h)
	}
	slices.Sort(rest)
	for _, h := range rest {
		order = append(order, members[h])
	}
	// The target is referenced by all the others, so it is last unless a
	// cycle got in the way; make sure it is.
	if i := slices.IndexFunc(order, func(p catalog.Path) bool { return p.HashPart == hashPart }); i >= 0 && i != len(order)-1 {
		p := order[i]
		order = append(slices.Delete(order, i, i+1), p)
	}
	return order, nil
}

// PlanRemovePath is RemovePath without removing anything (`cached path rm
// --dry-run`): what it would remove, in order, and the pins that go with
// those paths (with force; without it a pinned path is refused). It
// returns the refusals RemovePath would.
func (c *Collector) PlanRemovePath(ctx context.Context, hashPart string, force bool) ([]Doomed, []catalog.Pin, error) {
	var order []catalog.Path
	if force {
		var err error
		if order, err = c.referrerClosure(ctx, hashPart); err != nil {
			return nil, nil, err
		}
		if len(order) == 0 {
			return nil, nil, fmt.Errorf("gc: removing %s: %w", hashPart, catalog.ErrNotFound)
		}
	} else {
		p, err := c.cat.Path(ctx, hashPart)
		if err != nil {
			return nil, nil, fmt.Errorf("gc: removing %s: %w", hashPart, err)
		}
		refs, err := c.cat.Referrers(ctx, hashPart)
		if err != nil {
			return nil, nil, fmt.Errorf("gc: finding the referrers of %s: %w", p.StorePath, err)
		}
		if slices.ContainsFunc(refs, func(r string) bool { return r != hashPart }) {
			return nil, nil, c.referencedError(ctx, hashPart, catalog.ErrReferenced)
		}
		order = []catalog.Path{p}
	}
	pins, err := c.cat.Pins(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("gc: listing pins: %w", err)
	}
	doomed := make(map[string]bool, len(order))
	out := make([]Doomed, 0, len(order))
	target := order[len(order)-1].StorePath
	for _, p := range order {
		doomed[p.HashPart] = true
		d := Doomed{HashPart: p.HashPart, StorePath: p.StorePath, CreatedAt: p.CreatedAt, LastUsed: p.LastUsed,
			Reason: "removed on request"}
		if p.HashPart != hashPart {
			d.Reason = "depends on " + target + ", removed on request"
		}
		if n, err := c.cat.LookupNAR(ctx, p.NARKey); err == nil {
			d.FileSize = n.FileSize
		}
		out = append(out, d)
	}
	var unpinned []catalog.Pin
	for _, p := range pins {
		if doomed[p.HashPart] {
			unpinned = append(unpinned, p)
		}
	}
	if !force && len(unpinned) > 0 {
		return nil, nil, fmt.Errorf("gc: %s is pinned (remove its pins first, or force): %w", order[0].StorePath, catalog.ErrPinned)
	}
	return out, unpinned, nil
}
