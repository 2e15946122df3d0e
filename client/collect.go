package client

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/nix-cached/cached/narinfo"
	"github.com/nix-cached/cached/signing"
)

// Collect is one `cached collect`: a garbage collection of the local store
// that archives before it deletes. It deletes only paths that the cache
// serves with the same contents and a valid signature by one of its keys,
// so a path the cache lacks is never lost, and a kill at any moment loses
// nothing: every deletion was confirmed first.
type Collect struct {
	// Push pushes the paths the cache lacks; its Cache and Nix are the
	// cache and the store collect works on.
	Push *Push
	// Keys are the keys a served path must be signed by (the cache's).
	Keys   []signing.PublicKey
	DryRun bool
	Out    io.Writer
}

// CollectResult says what a collection did, in paths and NAR bytes.
type CollectResult struct {
	Dead, Archived, Freed                int
	DeadBytes, ArchivedBytes, FreedBytes int64
	// Kept are the dead paths not deleted, with the reason.
	Kept map[string]string
}

// Run finds what the local GC would delete, pushes what the cache lacks,
// confirms that the cache serves each path, and deletes the confirmed
// ones. With DryRun it only reports what would be archived and freed.
func (c *Collect) Run(ctx context.Context) (CollectResult, error) {
	res := CollectResult{Kept: map[string]string{}}
	dead, err := c.Push.Nix.Dead(ctx)
	if err != nil {
		return res, err
	}
	infos, err := c.Push.Nix.PathInfos(ctx, false, dead)
	if err != nil {
		return res, err
	}
	byHash := make(map[string]PathInfo, len(infos))
	hashes := make([]string, 0, len(infos))
	for _, in := range infos {
		byHash[hashPart(in.Path)] = in
		hashes = append(hashes, hashPart(in.Path))
		res.Dead++
		res.DeadBytes += in.NarSize
	}
	confirmed, why, err := c.confirm(ctx, hashes, byHash)
	if err != nil {
		return res, err
	}
	var missing []string
	for _, h := range hashes {
		if !confirmed[h] {
			missing = append(missing, byHash[h].Path)
		}
	}
	slices.Sort(missing)
	if c.DryRun {
		for _, p := range missing {
			fmt.Fprintf(c.Out, "would archive %s (%s)\n", p, why[hashPart(p)])
		}
		fmt.Fprintf(c.Out, "would archive %d paths (%s) and free %d paths (%s)\n",
			len(missing), human(sumSize(missing, byHash)), res.Dead, human(res.DeadBytes))
		return res, nil
	}
	if len(missing) > 0 {
		if _, err := c.Push.Run(ctx, missing); err != nil {
			// Nothing unconfirmed is deleted: keep going with what the
			// cache already serves, and say why the rest stays.
			fmt.Fprintf(c.Out, "pushing failed, the paths the cache lacks are kept: %v\n", err)
		}
		var again []string
		for _, p := range missing {
			again = append(again, hashPart(p))
		}
		now, nowWhy, err := c.confirm(ctx, again, byHash)
		if err != nil {
			return res, err
		}
		for h := range now {
			confirmed[h] = true
			res.Archived++
			res.ArchivedBytes += byHash[h].NarSize
		}
		for h, w := range nowWhy {
			res.Kept[byHash[h].Path] = w
		}
	}
	var doomed []string
	for _, h := range hashes {
		if confirmed[h] {
			doomed = append(doomed, byHash[h].Path)
		}
	}
	slices.Sort(doomed)
	if err := c.delete(ctx, doomed, byHash, &res); err != nil {
		return res, err
	}
	fmt.Fprintf(c.Out, "%d dead paths (%s): archived %d (%s) to %s, freed %d (%s), kept %d\n",
		res.Dead, human(res.DeadBytes), res.Archived, human(res.ArchivedBytes), c.Push.Cache.Redacted(),
		res.Freed, human(res.FreedBytes), len(res.Kept))
	kept := make([]string, 0, len(res.Kept))
	for p := range res.Kept {
		kept = append(kept, p)
	}
	slices.Sort(kept)
	for _, p := range kept {
		fmt.Fprintf(c.Out, "kept %s: %s\n", p, res.Kept[p])
	}
	return res, nil
}

// delete deletes the confirmed paths. Nix stops at the first path that
// became alive since it was found dead: that path and what it refers to
// are kept, and the rest is deleted in another round.
func (c *Collect) delete(ctx context.Context, doomed []string, byHash map[string]PathInfo, res *CollectResult) error {
	for len(doomed) > 0 {
		gone, alive, err := c.Push.Nix.Delete(ctx, doomed)
		if err != nil {
			return err
		}
		keep := map[string]bool{}
		for _, p := range alive {
			c.closure(p, byHash, keep)
		}
		var next []string
		for _, p := range doomed {
			switch {
			case gone[p]:
				res.Freed++
				res.FreedBytes += byHash[hashPart(p)].NarSize
			case keep[p]:
				res.Kept[p] = "it became alive while collect ran"
			case len(alive) > 0:
				next = append(next, p)
			default:
				res.Kept[p] = "a path that stays refers to it"
			}
		}
		doomed = next
	}
	return nil
}

// closure adds p and what it refers to (as far as the dead paths go) to
// set.
func (c *Collect) closure(p string, byHash map[string]PathInfo, set map[string]bool) {
	if set[p] {
		return
	}
	set[p] = true
	for _, r := range byHash[hashPart(p)].References {
		if _, dead := byHash[hashPart(r)]; dead {
			c.closure(r, byHash, set)
		}
	}
}

// confirm asks the cache which of hashes it serves, and returns those it
// serves with the local contents (NarHash, NarSize, references) and a
// valid signature by one of c.Keys, and for the others why not.
func (c *Collect) confirm(ctx context.Context, hashes []string, local map[string]PathInfo) (map[string]bool, map[string]string, error) {
	held, err := c.Push.Cache.Lookup(ctx, hashes)
	if err != nil {
		return nil, nil, fmt.Errorf("asking the cache what it holds (a push token is needed): %w", err)
	}
	ok := make(map[string]bool, len(held))
	why := map[string]string{}
	for _, h := range hashes {
		ni := held[h]
		if ni == nil {
			why[h] = "the cache lacks it"
			continue
		}
		if reason := c.check(ni, local[h]); reason != "" {
			why[h] = reason
			continue
		}
		ok[h] = true
	}
	return ok, why, nil
}

// check returns why a served narinfo does not confirm the local path, or
// "" if it does.
func (c *Collect) check(ni *narinfo.NarInfo, local PathInfo) string {
	if ni.StorePath != local.Path || ni.NarHash.String() != local.NarHash.String() || int64(ni.NarSize) != local.NarSize {
		return "the cache holds other contents under its name"
	}
	refs := make([]string, 0, len(local.References))
	for _, r := range local.References {
		refs = append(refs, r[strings.LastIndexByte(r, '/')+1:])
	}
	slices.Sort(refs)
	served := slices.Sorted(slices.Values(ni.References))
	if !slices.Equal(refs, served) {
		return "the cache holds other references for it"
	}
	fp, err := ni.AppendFingerprint(nil)
	if err != nil {
		return "the cache's narinfo is malformed: " + err.Error()
	}
	if good, err := signing.VerifyAny(c.Keys, fp, ni.Sigs); !good || err != nil {
		return "the cache serves it without a valid signature by its key"
	}
	return ""
}

func sumSize(paths []string, byHash map[string]PathInfo) int64 {
	var n int64
	for _, p := range paths {
		n += byHash[hashPart(p)].NarSize
	}
	return n
}
