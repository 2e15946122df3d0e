package catalogtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog"
)

// lastUsed returns the LastUsed of a published path or fails the test.
func lastUsed(t *testing.T, c catalog.Catalog, hashPart string) time.Time {
	t.Helper()
	p, err := c.Path(context.Background(), hashPart)
	if err != nil {
		t.Fatalf("Path(%s): %v", hashPart, err)
	}
	return p.LastUsed
}

// checkLastUsed fails the test unless each path's LastUsed is as given.
func checkLastUsed(t *testing.T, c catalog.Catalog, step string, want map[string]time.Time) {
	t.Helper()
	for h, w := range want {
		if got := lastUsed(t, c, h); !got.Equal(w) {
			t.Errorf("%s: LastUsed(%s) = %v, want %v", step, h, got, w)
		}
	}
}

func testPublishLastUsed(t *testing.T, c catalog.Catalog) {
	ctx := context.Background()
	n := newNAR("used", at(0))
	p := newPath("used", n, "k:1")
	p.LastUsed = at(99 * time.Hour) // ignored: a new path's last use is its publication
	publish(t, c, n, p)
	p.LastUsed = p.CreatedAt
	checkPath(t, c, p)

	again := p
	again.CreatedAt = at(time.Hour) // a push of the same path is a use
	if err := c.Publish(ctx, again, noOpts); err != nil {
		t.Fatalf("re-Publish: %v", err)
	}
	p.LastUsed = at(time.Hour)
	checkPath(t, c, p)

	again.CreatedAt = at(time.Minute) // a push stamped earlier moves nothing back
	if err := c.Publish(ctx, again, noOpts); err != nil {
		t.Fatalf("re-Publish: %v", err)
	}
	checkPath(t, c, p)
}

func testRecordUse(t *testing.T, c catalog.Catalog) {
	ctx := context.Background()
	shared := newNAR("shared", at(0))
	a, b := newPath("a", shared, "k:1"), newPath("b", shared, "k:1")
	publish(t, c, shared, a)
	if err := c.Publish(ctx, b, noOpts); err != nil {
		t.Fatalf("Publish(b): %v", err)
	}
	own := newNAR("own", at(0))
	o := newPath("own", own, "k:1")
	publish(t, c, own, o)
	unknown := "nar/" + FakeHash("unknown", 52) + ".nar.zst"

	for _, step := range []struct {
		name  string
		paths map[string]time.Time
		nars  map[string]time.Time
		want  map[string]time.Time
	}{
		{"nothing", nil, nil,
			map[string]time.Time{a.HashPart: at(0), b.HashPart: at(0), o.HashPart: at(0)}},
		{"by hash part", map[string]time.Time{a.HashPart: at(time.Hour), HashPart("nobody"): at(time.Hour)}, nil,
			map[string]time.Time{a.HashPart: at(time.Hour), b.HashPart: at(0), o.HashPart: at(0)}},
		{"by NAR key: every path with it", nil, map[string]time.Time{shared.Key: at(30 * time.Minute), unknown: at(time.Hour)},
			map[string]time.Time{a.HashPart: at(time.Hour), b.HashPart: at(30 * time.Minute), o.HashPart: at(0)}},
		{"both, never back",
			map[string]time.Time{a.HashPart: at(time.Minute), o.HashPart: at(2 * time.Hour)},
			map[string]time.Time{shared.Key: at(10 * time.Minute), own.Key: at(time.Hour)},
			map[string]time.Time{a.HashPart: at(time.Hour), b.HashPart: at(30 * time.Minute), o.HashPart: at(2 * time.Hour)}},
		{"the later of both", map[string]time.Time{b.HashPart: at(3 * time.Hour)}, map[string]time.Time{shared.Key: at(4 * time.Hour)},
			map[string]time.Time{a.HashPart: at(4 * time.Hour), b.HashPart: at(4 * time.Hour), o.HashPart: at(2 * time.Hour)}},
	} {
		if err := c.RecordUse(ctx, step.paths, step.nars); err != nil {
			t.Fatalf("%s: RecordUse: %v", step.name, err)
		}
		checkLastUsed(t, c, step.name, step.want)
	}
	checkAbsent(t, c, HashPart("nobody"))
	checkLookup(t, c, unknown, catalog.NAR{})
}

// graphCount is more paths than one batch of the implementations (4096
// in SQLite and PostgreSQL), so that walks cross a batch boundary.
const graphCount = 4500

func testWalkGraph(t *testing.T, c catalog.Catalog) {
	ctx := context.Background()
	if err := c.WalkGraph(ctx, func(g catalog.GraphNode) error {
		return fmt.Errorf("visited %s in an empty catalog", g.HashPart)
	}); err != nil {
		t.Fatalf("WalkGraph on an empty catalog: %v", err)
	}
	want := map[string]catalog.GraphNode{}
	add := func(p catalog.Path, n catalog.NAR) {
		want[p.HashPart] = catalog.GraphNode{
			HashPart: p.HashPart, StorePath: p.StorePath, NARKey: n.Key, FileSize: n.FileSize,
			CreatedAt: p.CreatedAt, LastUsed: p.CreatedAt, References: sortedRefs(p.References),
		}
	}
	var prev []string
	for i := range graphCount {
		seed := fmt.Sprintf("graph-%d", i)
		n := newNAR(seed, at(time.Duration(i)*time.Millisecond))
		refs := slices.Clone(prev)
		if i%2 == 0 {
			refs = append(refs, seed) // itself
		}
		p := newPath(seed, n, "k:1", refs...)
		publish(t, c, n, p)
		add(p, n)
		if i%5 == 0 { // some paths are referenced by the next ones, up to 3 at a time
			prev = append([]string{seed}, prev[:min(len(prev), 2)]...)
		}
	}
	// Two paths share a NAR: each counts its size.
	shared := newNAR("graph-shared", at(time.Hour))
	shared.FileSize = 1 << 40
	for _, seed := range []string{"graph-shared-1", "graph-shared-2"} {
		p := newPath(seed, shared, "k:1", "graph-0")
		publish(t, c, shared, p)
		add(p, shared)
	}
	used := HashPart("graph-7")
	if err := c.RecordUse(ctx, map[string]time.Time{used: at(48 * time.Hour)}, nil); err != nil {
		t.Fatalf("RecordUse: %v", err)
	}
	g := want[used]
	g.LastUsed = at(48 * time.Hour)
	want[used] = g

	checkWalk(t, "WalkGraph", want, func(fn func(catalog.GraphNode) error) error { return c.WalkGraph(ctx, fn) },
		func(g catalog.GraphNode) string { return g.HashPart }, diffNode)
}

// diffNode describes how got differs from want, or returns "";
// References are compared as sets.
func diffNode(got, want catalog.GraphNode) string {
	if gr, wr := sortedRefs(got.References), sortedRefs(want.References); !slices.Equal(gr, wr) {
		return fmt.Sprintf("References %q, want %q", gr, wr)
	}
	if !got.CreatedAt.Equal(want.CreatedAt) || !got.LastUsed.Equal(want.LastUsed) {
		return fmt.Sprintf("CreatedAt, LastUsed %v, %v; want %v, %v", got.CreatedAt, got.LastUsed,
			want.CreatedAt, want.LastUsed)
	}
	if got.HashPart != want.HashPart || got.StorePath != want.StorePath || got.NARKey != want.NARKey ||
		got.FileSize != want.FileSize || got.Mirrored != want.Mirrored {
		return fmt.Sprintf("%+v, want %+v", got, want)
	}
	return ""
}

func testWalkGraphError(t *testing.T, c catalog.Catalog) {
	checkWalkStops(t, c, "WalkGraph", func(fn func() error) error {
		return c.WalkGraph(context.Background(), func(catalog.GraphNode) error { return fn() })
	})
}

// checkWalkStops checks that a walk stops at its callback's first error
// and returns it.
func checkWalkStops(t *testing.T, c catalog.Catalog, name string, walk func(fn func() error) error) {
	t.Helper()
	for i := range 3 {
		seed := fmt.Sprintf("stop-%d", i)
		n := newNAR(seed, at(0))
		publish(t, c, n, newPath(seed, n, "k:1"))
	}
	stop := errors.New("stop here")
	calls := 0
	err := walk(func() error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) {
		t.Errorf("%s error = %v, want the callback's error", name, err)
	}
	if calls != 1 {
		t.Errorf("%s called fn %d times after it failed, want 1", name, calls)
	}
}

func testReferrers(t *testing.T, c catalog.Catalog) {
	ctx := context.Background()
	base := newNAR("base", at(0))
	publish(t, c, base, newPath("base", base, "k:1", "base"))
	var users []string
	for _, seed := range []string{"user-1", "user-2", "user-3"} {
		n := newNAR(seed, at(0))
		publish(t, c, n, newPath(seed, n, "k:1", "base", seed))
		users = append(users, HashPart(seed))
	}
	lone := newNAR("lone", at(0))
	publish(t, c, lone, newPath("lone", lone, "k:1", "lone"))
	partial := newNAR("partial", at(0))
	putNAR(t, c, partial)
	if err := c.Publish(ctx, newPath("partial", partial, "k:1", "absent"),
		catalog.PublishOptions{AllowIncompleteClosure: true}); err != nil {
		t.Fatalf("Publish(partial): %v", err)
	}

	for _, tc := range []struct {
		hashPart string
		want     []string
	}{
		{HashPart("base"), users},
		{HashPart("lone"), nil},   // only itself
		{HashPart("user-1"), nil}, // nobody
		{HashPart("absent"), []string{HashPart("partial")}},
		{HashPart("never"), nil},
	} {
		got, err := c.Referrers(ctx, tc.hashPart)
		if err != nil {
			t.Fatalf("Referrers(%s): %v", tc.hashPart, err)
		}
		if !slices.Equal(sortedRefs(got), sortedRefs(tc.want)) {
			t.Errorf("Referrers(%s) = %q, want %q", tc.hashPart, got, tc.want)
		}
	}
	if _, err := c.DeletePath(ctx, users[1], catalog.DeleteCondition{}); err != nil {
		t.Fatalf("DeletePath(%s): %v", users[1], err)
	}
	got, err := c.Referrers(ctx, HashPart("base"))
	if err != nil {
		t.Fatalf("Referrers: %v", err)
	}
	if want := []string{users[0], users[2]}; !slices.Equal(sortedRefs(got), sortedRefs(want)) {
		t.Errorf("Referrers(base) after deleting a user = %q, want %q", got, want)
	}
}

// checkWalk checks that walk visits every value of want exactly once, each
// as diff expects, and nothing else.
func checkWalk[T any](t *testing.T, name string, want map[string]T, walk func(func(T) error) error,
	key func(T) string, diff func(got, want T) string) {
	t.Helper()
	seen := map[string]bool{}
	err := walk(func(v T) error {
		k := key(v)
		if seen[k] {
			return fmt.Errorf("visited %s twice", k)
		}
		seen[k] = true
		w, ok := want[k]
		if !ok {
			return fmt.Errorf("visited unknown path %s", k)
		}
		if d := diff(v, w); d != "" {
			return fmt.Errorf("%s: %s", k, d)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(seen) != len(want) {
		t.Errorf("%s visited %d paths, want %d", name, len(seen), len(want))
	}
}
