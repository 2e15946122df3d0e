package catalogtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog"
)

// testReplaceNarInfo: ReplaceNarInfo is a compare-and-swap of the narinfo
// alone. It leaves every other field (LastUsed above all) as it was,
// records a change, refuses a narinfo that changed since it was read (a
// push in between) without recording one, and does not serve a path that
// a quarantine hides.
func testReplaceNarInfo(t *testing.T, c catalog.Catalog) {
	ctx := context.Background()
	n := newNAR("resigned", at(0))
	p := newPath("resigned", n, "old-1:sig")
	p.Mirrored = true
	publish(t, c, n, p)
	if err := c.RecordUse(ctx, map[string]time.Time{p.HashPart: at(5 * time.Hour)}, nil); err != nil {
		t.Fatalf("RecordUse: %v", err)
	}
	p.LastUsed = at(5 * time.Hour)
	seq := lastChange(t, c)

	want := p
	want.NarInfo = p.NarInfo + "Sig: new-1:sig\n"
	if err := c.ReplaceNarInfo(ctx, p.HashPart, p.NarInfo, want.NarInfo); err != nil {
		t.Fatalf("ReplaceNarInfo: %v", err)
	}
	checkPath(t, c, want)
	seq = checkChanges(t, c, seq, "resigned")

	// The narinfo it was told is not the current one: nothing changes.
	if err := c.ReplaceNarInfo(ctx, p.HashPart, p.NarInfo, "stale"); !errors.Is(err, catalog.ErrNarInfoChanged) {
		t.Errorf("ReplaceNarInfo of a narinfo replaced since: %v, want ErrNarInfoChanged", err)
	}
	checkPath(t, c, want)
	seq = checkChanges(t, c, seq)

	// A push between the read and the swap wins.
	read := want.NarInfo
	pushed := newPath("resigned", n, "old-1:sig client-1:sig")
	pushed.CreatedAt = at(6 * time.Hour)
	if err := c.Publish(ctx, pushed, noOpts); err != nil {
		t.Fatalf("re-Publish: %v", err)
	}
	seq = checkChanges(t, c, seq, "resigned")
	if err := c.ReplaceNarInfo(ctx, p.HashPart, read, read+"Sig: lost\n"); !errors.Is(err, catalog.ErrNarInfoChanged) {
		t.Errorf("ReplaceNarInfo after a push: %v, want ErrNarInfoChanged", err)
	}
	pushed.CreatedAt, pushed.LastUsed, pushed.Mirrored = p.CreatedAt, at(6*time.Hour), false
	checkPath(t, c, pushed)
	seq = checkChanges(t, c, seq)

	if err := c.ReplaceNarInfo(ctx, HashPart("absent"), "", "x"); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("ReplaceNarInfo of an unpublished path: %v, want ErrNotFound", err)
	}
	checkChanges(t, c, seq)

	// A path hidden by a quarantine is re-signed but stays hidden.
	dn := newNAR("damaged", at(0))
	d := newPath("damaged", dn, "old-1:sig")
	publish(t, c, dn, d)
	if _, err := c.Quarantine(ctx, dn.Key, "damaged", at(time.Hour)); err != nil {
		t.Fatalf("Quarantine: %v", err)
	}
	if err := c.ReplaceNarInfo(ctx, d.HashPart, d.NarInfo, d.NarInfo+"Sig: new-1:sig\n"); err != nil {
		t.Fatalf("ReplaceNarInfo of a hidden path: %v", err)
	}
	checkServed(t, c, "re-signed while hidden", []catalog.Path{d})
	if got, err := c.Path(ctx, d.HashPart); err != nil || got.NarInfo != d.NarInfo+"Sig: new-1:sig\n" {
		t.Errorf("Path of the hidden path after ReplaceNarInfo: %q, %v", got.NarInfo, err)
	}
}

// testReplaceNarInfoConcurrent races re-signers, each appending a line to
// the narinfo it read with ReplaceNarInfo (reading again when it
// changed), against pushes that publish a new narinfo: no re-signer ever
// writes over a push, so the narinfo ends as the last push plus lines
// appended to it, and every success is one change in the log.
func testReplaceNarInfoConcurrent(t *testing.T, c catalog.Catalog) {
	const resigners, rounds, pushes = 4, 25, 25
	ctx := context.Background()
	n := newNAR("contended", at(0))
	publish(t, c, n, newPath("contended", n, "push:0"))
	seq := lastChange(t, c)
	var replaced atomic.Int64
	errs := make([]error, resigners+1)
	var wg sync.WaitGroup
	for g := range resigners {
		wg.Go(func() {
			for i := range rounds {
				for {
					p, err := c.Path(ctx, HashPart("contended"))
					if err != nil {
						errs[g] = err
						return
					}
					err = c.ReplaceNarInfo(ctx, p.HashPart, p.NarInfo, p.NarInfo+fmt.Sprintf("Sig: r%d-%d\n", g, i))
					if err == nil {
						replaced.Add(1)
						break
					}
					if !errors.Is(err, catalog.ErrNarInfoChanged) {
						errs[g] = err
						return
					}
				}
			}
		})
	}
	last := ""
	wg.Go(func() {
		for i := 1; i <= pushes; i++ {
			p := newPath("contended", n, fmt.Sprintf("push:%d", i))
			if err := c.Publish(ctx, p, noOpts); err != nil {
				errs[resigners] = err
				return
			}
			last = p.NarInfo
		}
	})
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent ReplaceNarInfo and Publish: %v", err)
	}
	p, err := c.Path(ctx, HashPart("contended"))
	if err != nil {
		t.Fatalf("Path: %v", err)
	}
	appended, ok := strings.CutPrefix(p.NarInfo, last)
	if !ok {
		t.Fatalf("the narinfo does not begin with the last push's:\n%s\nwant a prefix of\n%s", p.NarInfo, last)
	}
	for _, line := range strings.Split(strings.TrimSuffix(appended, "\n"), "\n") {
		if line != "" && !strings.HasPrefix(line, "Sig: r") {
			t.Errorf("after the last push, line %q", line)
		}
	}
	if got, want := len(changesAfter(t, c, seq)), int(replaced.Load())+pushes; got != want {
		t.Errorf("%d changes recorded for %d replacements and %d pushes", got, replaced.Load(), pushes)
	}
	if replaced.Load() != resigners*rounds {
		t.Errorf("%d replacements, want %d", replaced.Load(), resigners*rounds)
	}
}

// testNarInfosAfter pages through every published path, hidden ones
// included, in hash-part order.
func testNarInfosAfter(t *testing.T, c catalog.Catalog) {
	ctx := context.Background()
	want := map[string]string{}
	var order []string
	for i := range 7 {
		seed := fmt.Sprintf("page-%d", i)
		n := newNAR(seed, at(0))
		p := newPath(seed, n, "k:1")
		publish(t, c, n, p)
		want[p.HashPart] = p.NarInfo
		order = append(order, p.HashPart)
		if i == 3 {
			if _, err := c.Quarantine(ctx, n.Key, "damaged", at(time.Hour)); err != nil {
				t.Fatalf("Quarantine: %v", err)
			}
		}
	}
	slices.Sort(order)
	var got []string
	after := ""
	for {
		page, err := c.NarInfosAfter(ctx, after, 3)
		if err != nil {
			t.Fatalf("NarInfosAfter(%q): %v", after, err)
		}
		if len(page) > 3 {
			t.Fatalf("NarInfosAfter(%q, 3) returned %d", after, len(page))
		}
		for _, ni := range page {
			if ni.NarInfo != want[ni.HashPart] {
				t.Errorf("NarInfosAfter: %s has narinfo %q, want %q", ni.HashPart, ni.NarInfo, want[ni.HashPart])
			}
			got = append(got, ni.HashPart)
			after = ni.HashPart
		}
		if len(page) < 3 {
			break
		}
	}
	if !slices.Equal(got, order) {
		t.Errorf("NarInfosAfter pages = %v, want %v", got, order)
	}
	if page, err := c.NarInfosAfter(ctx, order[len(order)-1], 3); err != nil || len(page) != 0 {
		t.Errorf("NarInfosAfter(the last) = %v, %v; want none", page, err)
	}
}

// testResignState stores and reads back the re-signing state.
func testResignState(t *testing.T, c catalog.Catalog) {
	ctx := context.Background()
	if s, err := c.ResignState(ctx); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("ResignState of a new catalog = %+v, %v; want ErrNotFound", s, err)
	}
	running := catalog.ResignState{
		Target:   "fp-1",
		KeyNames: []string{"cache-1", "cache-2"},
		Retired:  []string{"cache-0"},
		Holder:   "host:1",
		Cursor:   HashPart("cursor"),
		Checked:  12, Rewritten: 5, Total: 40, Seq: 99,
		Started: at(time.Minute),
		Updated: at(2 * time.Minute),
	}
	done := catalog.ResignState{
		Target:   "fp-2",
		KeyNames: []string{"cache-2"},
		Holder:   "host:2",
		Checked:  41, Total: 41, Seq: 120,
		Started:   at(time.Hour),
		Updated:   at(2 * time.Hour),
		Completed: at(2 * time.Hour),
	}
	for _, s := range []catalog.ResignState{running, done, running} {
		if err := c.SaveResignState(ctx, s); err != nil {
			t.Fatalf("SaveResignState(%+v): %v", s, err)
		}
		got, err := c.ResignState(ctx)
		if err != nil {
			t.Fatalf("ResignState: %v", err)
		}
		if d := diffResignState(got, s); d != "" {
			t.Errorf("ResignState after saving %+v: %s", s, d)
		}
	}
}

// diffResignState describes how got differs from want, or returns "".
func diffResignState(got, want catalog.ResignState) string {
	for _, tm := range []struct {
		name      string
		got, want time.Time
	}{{"Started", got.Started, want.Started}, {"Updated", got.Updated, want.Updated},
		{"Completed", got.Completed, want.Completed}} {
		if !tm.got.Equal(tm.want) || tm.got.IsZero() != tm.want.IsZero() {
			return fmt.Sprintf("%s %v, want %v", tm.name, tm.got, tm.want)
		}
	}
	got.Started, got.Updated, got.Completed = time.Time{}, time.Time{}, time.Time{}
	want.Started, want.Updated, want.Completed = time.Time{}, time.Time{}, time.Time{}
	if g, w := fmt.Sprintf("%#v", got), fmt.Sprintf("%#v", want); g != w {
		return fmt.Sprintf("%s, want %s", g, w)
	}
	return ""
}
