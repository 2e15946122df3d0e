package catalogtest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog"
)

var noOpts = catalog.PublishOptions{}

func testPublish(t *testing.T, c catalog.Catalog) {
	depNAR := newNAR("dep", at(0))
	dep := newPath("dep", depNAR, "k:dep")
	publish(t, c, depNAR, dep)

	n := newNAR("main", at(time.Minute))
	p := newPath("main", n, "k:main", "main", "dep") // itself and dep
	p.Deriver = ""
	publish(t, c, n, p)
	checkPath(t, c, dep)
	checkPath(t, c, p)
}

func testPublishUnknownNAR(t *testing.T, c catalog.Catalog) {
	putNAR(t, c, newNAR("other", at(0)))
	p := newPath("orphan", newNAR("orphan", at(0)), "k:1")
	err := c.Publish(context.Background(), p, noOpts)
	if !errors.Is(err, catalog.ErrNARNotFound) {
		t.Fatalf("Publish with unknown NAR: error %v, want ErrNARNotFound", err)
	}
	checkAbsent(t, c, p.HashPart)
}

func testPublishMissingReferences(t *testing.T, c catalog.Catalog) {
	knownNAR := newNAR("known", at(0))
	publish(t, c, knownNAR, newPath("known", knownNAR, "k:1"))
	n := newNAR("incomplete", at(0))
	putNAR(t, c, n)
	p := newPath("incomplete", n, "k:1", "zz-missing", "known", "incomplete", "aa-missing", "zz-missing")

	err := c.Publish(context.Background(), p, noOpts)
	if !errors.Is(err, catalog.ErrMissingReferences) {
		t.Fatalf("Publish with missing references: error %v, want ErrMissingReferences", err)
	}
	var mre *catalog.MissingReferencesError
	if !errors.As(err, &mre) {
		t.Fatalf("Publish error %v is not a *MissingReferencesError", err)
	}
	want := []string{HashPart("aa-missing"), HashPart("zz-missing")}
	slices.Sort(want)
	if !slices.Equal(mre.HashParts, want) {
		t.Errorf("missing references = %q, want %q (sorted, each once)", mre.HashParts, want)
	}
	checkAbsent(t, c, p.HashPart)
}

func testPublishSelfReference(t *testing.T, c catalog.Catalog) {
	n := newNAR("selfish", at(0))
	p := newPath("selfish", n, "k:1", "selfish")
	publish(t, c, n, p)
	checkPath(t, c, p)
}

func testPublishIncomplete(t *testing.T, c catalog.Catalog) {
	n := newNAR("partial", at(0))
	putNAR(t, c, n)
	p := newPath("partial", n, "k:1", "absent", "partial")
	opts := catalog.PublishOptions{AllowIncompleteClosure: true}
	if err := c.Publish(context.Background(), p, opts); err != nil {
		t.Fatalf("Publish with AllowIncompleteClosure: %v", err)
	}
	checkPath(t, c, p)
	checkAbsent(t, c, HashPart("absent"))
}

func testRepublish(t *testing.T, c catalog.Catalog) {
	n := newNAR("again", at(0))
	first := newPath("again", n, "k:old")
	publish(t, c, n, first)

	second := newPath("again", n, "k:old k:new")
	second.CreatedAt = at(time.Hour)
	if err := c.Publish(context.Background(), second, noOpts); err != nil {
		t.Fatalf("re-Publish with the same NarHash: %v", err)
	}
	second.CreatedAt = first.CreatedAt // first publication is kept
	second.LastUsed = at(time.Hour)    // a push is a use
	checkPath(t, c, second)
}

func testRepublishOtherNAR(t *testing.T, c catalog.Catalog) {
	ctx := context.Background()
	xz := newNAR("moved", at(0))
	xz.Key, xz.Compression = "nar/"+FakeHash("xz:moved", 52)+".nar.xz", "xz"
	first := newPath("moved", xz, "k:1")
	publish(t, c, xz, first)

	// The same contents uploaded again with another compression: the new
	// narinfo names the new NAR, so the record must follow it.
	zst := newNAR("moved", at(time.Hour))
	second := newPath("moved", zst, "k:1")
	publish(t, c, zst, second)
	second.CreatedAt = first.CreatedAt
	checkPath(t, c, second)
	got, err := c.UnclaimedNARs(ctx, at(2*time.Hour))
	if err != nil {
		t.Fatalf("UnclaimedNARs: %v", err)
	}
	if len(got) != 1 || got[0].Key != xz.Key {
		t.Errorf("UnclaimedNARs after moving the path = %v, want only %s", got, xz.Key)
	}
}

func testPublishConflict(t *testing.T, c catalog.Catalog) {
	n := newNAR("contested", at(0))
	p := newPath("contested", n, "k:1")
	publish(t, c, n, p)

	evil := newNAR("evil", at(time.Minute))
	putNAR(t, c, evil)
	q := newPath("contested", evil, "k:evil")
	err := c.Publish(context.Background(), q, noOpts)
	if !errors.Is(err, catalog.ErrConflict) {
		t.Fatalf("Publish with another NarHash: error %v, want ErrConflict", err)
	}
	checkPath(t, c, p)
}

func testPublishChain(t *testing.T, c catalog.Catalog) {
	ctx := context.Background()
	nc, nb, na := newNAR("c", at(0)), newNAR("b", at(0)), newNAR("a", at(0))
	pc := newPath("c", nc, "k:1")
	pb := newPath("b", nb, "k:1", "c")
	pa := newPath("a", na, "k:1", "b", "a")
	for _, n := range []catalog.NAR{na, nb, nc} {
		putNAR(t, c, n)
	}
	// Out of order: A needs B.
	var mre *catalog.MissingReferencesError
	if err := c.Publish(ctx, pa, noOpts); !errors.As(err, &mre) ||
		!slices.Equal(mre.HashParts, []string{pb.HashPart}) {
		t.Fatalf("Publish(A) before B: error %v, want missing %s", err, pb.HashPart)
	}
	for _, p := range []catalog.Path{pc, pb, pa} {
		if err := c.Publish(ctx, p, noOpts); err != nil {
			t.Fatalf("Publish(%s) in dependency order: %v", p.StorePath, err)
		}
	}
	for _, p := range []catalog.Path{pc, pb, pa} {
		checkPath(t, c, p)
	}
}

func testUnknownPath(t *testing.T, c catalog.Catalog) {
	n := newNAR("present", at(0))
	publish(t, c, n, newPath("present", n, "k:1"))
	checkAbsent(t, c, HashPart("absent"))
	checkAbsent(t, c, "")
}

// checkAbsent fails the test unless hashPart is not published.
func checkAbsent(t *testing.T, c catalog.Catalog, hashPart string) {
	t.Helper()
	ctx := context.Background()
	if _, err := c.NarInfo(ctx, hashPart); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("NarInfo(%q) error = %v, want ErrNotFound", hashPart, err)
	}
	if _, err := c.Path(ctx, hashPart); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("Path(%q) error = %v, want ErrNotFound", hashPart, err)
	}
}

// walkCount is enough paths to cross the batch boundaries of paginated
// implementations.
const walkCount = 1234

func testWalkPaths(t *testing.T, c catalog.Catalog) {
	ctx := context.Background()
	if err := c.WalkPaths(ctx, func(p catalog.Path) error {
		return fmt.Errorf("visited %s in an empty catalog", p.HashPart)
	}); err != nil {
		t.Fatalf("WalkPaths on an empty catalog: %v", err)
	}
	want := map[string]catalog.Path{}
	prev := ""
	for i := range walkCount {
		seed := fmt.Sprintf("walk-%d", i)
		n := newNAR(seed, at(time.Duration(i)*time.Millisecond))
		var p catalog.Path
		if prev == "" {
			p = newPath(seed, n, "k:1", seed)
		} else {
			p = newPath(seed, n, "k:1", prev, seed)
		}
		publish(t, c, n, p)
		want[p.HashPart] = p
		if i%3 == 0 {
			prev = seed // some paths are referenced, some refer to nothing else
		}
	}
	checkWalk(t, "WalkPaths", want, func(fn func(catalog.Path) error) error { return c.WalkPaths(ctx, fn) },
		func(p catalog.Path) string { return p.HashPart }, diffPath)
}

func testWalkPathsError(t *testing.T, c catalog.Catalog) {
	checkWalkStops(t, c, "WalkPaths", func(fn func() error) error {
		return c.WalkPaths(context.Background(), func(catalog.Path) error { return fn() })
	})
}

// A mirrored path is recorded as such, in Path and WalkGraph; publishing
// it again as mirrored keeps the mark, publishing it as pushed clears it
// for good.
func testPublishMirrored(t *testing.T, c catalog.Catalog) {
	ctx := context.Background()
	na, nb := newNAR("mirrored", at(0)), newNAR("pushed", at(0))
	a, b := newPath("mirrored", na, "k:a"), newPath("pushed", nb, "k:b")
	a.Mirrored = true
	publish(t, c, na, a)
	publish(t, c, nb, b)
	checkPath(t, c, a)
	checkPath(t, c, b)
	graphMirrored := func(step string, want map[string]bool) {
		t.Helper()
		got := map[string]bool{}
		if err := c.WalkGraph(ctx, func(g catalog.GraphNode) error {
			got[g.HashPart] = g.Mirrored
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(got, want) {
			t.Errorf("%s: WalkGraph's Mirrored %v, want %v", step, got, want)
		}
	}
	graphMirrored("published", map[string]bool{a.HashPart: true, b.HashPart: false})

	// Mirrored again (as after a scrub's quarantine): still mirrored.
	a.CreatedAt = at(time.Minute)
	if err := c.Publish(ctx, a, catalog.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	// A pushed path published again as mirrored stays pushed.
	b2 := b
	b2.Mirrored, b2.CreatedAt = true, at(time.Minute)
	if err := c.Publish(ctx, b2, catalog.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	graphMirrored("republished", map[string]bool{a.HashPart: true, b.HashPart: false})

	// Pushed: no longer mirrored, even if mirrored again later.
	a2 := a
	a2.Mirrored, a2.CreatedAt = false, at(2*time.Minute)
	if err := c.Publish(ctx, a2, catalog.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	a.CreatedAt = at(3 * time.Minute)
	if err := c.Publish(ctx, a, catalog.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	graphMirrored("pushed", map[string]bool{a.HashPart: false, b.HashPart: false})
	if p, err := c.Path(ctx, a.HashPart); err != nil || p.Mirrored {
		t.Errorf("Path after a push: Mirrored %v, %v; want false", p.Mirrored, err)
	}
}
