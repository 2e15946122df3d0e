package catalogtest

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog"
)

// namedPath is newPath for the path named by seed, whose store path's name
// is name instead of seed.
func namedPath(seed, name string, n catalog.NAR, refs ...string) catalog.Path {
	p := newPath(seed, n, "k:1", refs...)
	old := p.StorePath
	p.StorePath = "/nix/store/" + p.HashPart + "-" + name
	p.NarInfo = strings.Replace(p.NarInfo, old, p.StorePath, 1)
	return p
}

// base is the base name of p's store path, the cursor SearchPaths takes.
func base(p catalog.Path) string { return p.HashPart + "-" + catalog.PathName(p) }

// searchAll pages through SearchPaths(query) limit paths at a time and
// returns every page's paths, checking that no page is longer than limit.
func searchAll(t *testing.T, c catalog.Catalog, query string, limit int) []catalog.Path {
	t.Helper()
	var out []catalog.Path
	after := ""
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatalf("SearchPaths(%q): paging does not end", query)
		}
		page, err := c.SearchPaths(context.Background(), query, after, limit)
		if err != nil {
			t.Fatalf("SearchPaths(%q, %q, %d): %v", query, after, limit, err)
		}
		if len(page) > limit {
			t.Fatalf("SearchPaths(%q, %q, %d) returned %d paths", query, after, limit, len(page))
		}
		out = append(out, page...)
		if len(page) < limit {
			return out
		}
		after = base(page[len(page)-1])
	}
}

// bases returns the base names of paths.
func bases(paths []catalog.Path) []string {
	var out []string
	for _, p := range paths {
		out = append(out, base(p))
	}
	return out
}

// testSearchPaths checks the search by name: substrings of the name only,
// ASCII case ignored, LIKE's wildcards taken literally, bytewise order by
// name then hash part, paging by cursor, whole records.
func testSearchPaths(t *testing.T, c catalog.Catalog) {
	ctx := context.Background()
	if got, err := c.SearchPaths(ctx, "", "", 10); err != nil || len(got) != 0 {
		t.Fatalf("SearchPaths on an empty catalog = %v, %v; want nothing", got, err)
	}
	byName := map[string]catalog.Path{}
	add := func(seed, name string, refs ...string) catalog.Path {
		t.Helper()
		n := newNAR(seed, at(time.Duration(len(byName))*time.Second))
		p := namedPath(seed, name, n, refs...)
		publish(t, c, n, p)
		byName[seed] = p
		return p
	}
	add("glibc", "glibc-2.39")
	add("hello", "hello-2.12.1", "glibc", "hello")
	add("hello-again", "hello-2.12.1") // the same name, another hash part
	add("Hello", "Hello-World", "hello")
	add("libhello", "libhello-1.0")
	add("bash", "bash-5.2p37")
	add("dot", "a.c")
	add("abc", "abc")
	add("plus", "g++-13")
	// A path published without its references is found all the same.
	partial := newNAR("partial", at(time.Hour))
	putNAR(t, c, partial)
	pp := namedPath("partial", "partial-hello", partial, "absent")
	if err := c.Publish(ctx, pp, catalog.PublishOptions{AllowIncompleteClosure: true}); err != nil {
		t.Fatalf("Publish(partial): %v", err)
	}
	byName["partial"] = pp

	// sorted returns the seeds' paths in the order SearchPaths promises.
	sorted := func(seeds ...string) []string {
		var ps []catalog.Path
		for _, s := range seeds {
			ps = append(ps, byName[s])
		}
		slices.SortFunc(ps, func(a, b catalog.Path) int {
			if c := strings.Compare(catalog.PathName(a), catalog.PathName(b)); c != 0 {
				return c
			}
			return strings.Compare(a.HashPart, b.HashPart)
		})
		return bases(ps)
	}
	all := make([]string, 0, len(byName))
	for s := range byName {
		all = append(all, s)
	}
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"", sorted(all...)},
		{"hello", sorted("hello", "hello-again", "Hello", "libhello", "partial")},
		{"HELLO", sorted("hello", "hello-again", "Hello", "libhello", "partial")},
		{"hElLo-2", sorted("hello", "hello-again")},
		{"world", sorted("Hello")},
		{"2.12.1", sorted("hello", "hello-again")},
		{"g++", sorted("plus")},
		{".", sorted("glibc", "hello", "hello-again", "libhello", "bash", "dot")},
		{"a.c", sorted("dot")},
		// LIKE's wildcards and escape character stand for themselves.
		{"a_c", nil},
		{"a%c", nil},
		{"%", nil},
		{"_", nil},
		{`\`, nil},
		{`a\%c`, nil},
		// Only the name is searched: not the hash part, not the store dir.
		{HashPart("bash")[:12], nil},
		{"nix", nil},
		{"store", nil},
		{"/", nil},
		{"nothing-like-it", nil},
	} {
		for _, limit := range []int{1, 2, 3, 100} {
			got := bases(searchAll(t, c, tc.query, limit))
			if !slices.Equal(got, tc.want) {
				t.Errorf("SearchPaths(%q) by %d = %q, want %q", tc.query, limit, got, tc.want)
			}
		}
	}

	// Results are whole records, references included.
	found, err := c.SearchPaths(ctx, "hello-2.12.1", "", 10)
	if err != nil || len(found) != 2 {
		t.Fatalf("SearchPaths(hello-2.12.1) = %v, %v; want 2 paths", bases(found), err)
	}
	for _, got := range found {
		want, err := c.Path(ctx, got.HashPart)
		if err != nil {
			t.Fatalf("Path(%s): %v", got.HashPart, err)
		}
		if d := diffPath(got, want); d != "" {
			t.Errorf("SearchPaths result %s: %s", got.HashPart, d)
		}
	}
	if got := sortedRefs(found[slices.IndexFunc(found, func(p catalog.Path) bool {
		return p.HashPart == HashPart("hello")
	})].References); !slices.Equal(got, sortedRefs([]string{HashPart("glibc"), HashPart("hello")})) {
		t.Errorf("SearchPaths: hello's references %q, want glibc and itself", got)
	}

	// A cursor need not name a published path: the page starts after it.
	after := strings.Repeat("0", 32) + "-hello"
	got, err := c.SearchPaths(ctx, "hello", after, 100)
	if err != nil {
		t.Fatalf("SearchPaths after an absent path: %v", err)
	}
	if want := sorted("hello", "hello-again", "libhello", "partial"); !slices.Equal(bases(got), want) {
		t.Errorf("SearchPaths(hello) after %s = %q, want %q", after, bases(got), want)
	}

	// A deleted path is not found any more.
	if _, err := c.DeletePath(ctx, HashPart("Hello"), catalog.DeleteCondition{}); err != nil {
		t.Fatalf("DeletePath(Hello): %v", err)
	}
	if got := bases(searchAll(t, c, "world", 10)); len(got) != 0 {
		t.Errorf("SearchPaths(world) after the deletion = %q", got)
	}

	// A quarantined path is still found: the operator looks for it.
	if _, err := c.Quarantine(ctx, newNAR("bash", at(0)).Key, "test", at(2*time.Hour)); err != nil {
		t.Fatalf("Quarantine: %v", err)
	}
	if got := bases(searchAll(t, c, "bash", 10)); !slices.Equal(got, sorted("bash")) {
		t.Errorf("SearchPaths(bash) of a quarantined path = %q", got)
	}

	for _, bad := range []struct {
		after string
		limit int
	}{
		{"", 0}, {"", -1}, {"not-a-cursor", 10}, {strings.Repeat("0", 32), 10}, {strings.Repeat("0", 32) + "-", 10},
	} {
		if got, err := c.SearchPaths(ctx, "hello", bad.after, bad.limit); err == nil {
			t.Errorf("SearchPaths(hello, %q, %d) = %v, want an error", bad.after, bad.limit, bases(got))
		}
	}
}

// testGCRunHistory checks GCRuns: newest first by Started, the last
// recorded first among equals, at most limit.
func testGCRunHistory(t *testing.T, c catalog.Catalog) {
	ctx := context.Background()
	if got, err := c.GCRuns(ctx, 10); err != nil || len(got) != 0 {
		t.Fatalf("GCRuns with no runs = %v, %v; want none", got, err)
	}
	run := func(holder string, started time.Duration, live int) catalog.GCRun {
		return catalog.GCRun{
			Holder: holder, Started: at(started), Finished: at(started + time.Minute),
			PathsRemoved: live / 10, NARsRemoved: live / 20, BytesRemoved: int64(live) << 20,
			LivePaths: live, LiveBytes: int64(live) << 30,
		}
	}
	failed := run("d", 2*time.Hour, 0)
	failed.Error = "gc: listing blobs: connection refused"
	recorded := []catalog.GCRun{
		run("a", time.Hour, 100),
		run("c", 3*time.Hour, 300),
		failed,
		run("b", 0, 50),          // recorded late, started first
		run("e", 3*time.Hour, 7), // started with c, recorded after it
	}
	for _, r := range recorded {
		if err := c.RecordGCRun(ctx, r); err != nil {
			t.Fatalf("RecordGCRun(%s): %v", r.Holder, err)
		}
	}
	want := []catalog.GCRun{recorded[4], recorded[1], recorded[2], recorded[0], recorded[3]}
	for _, limit := range []int{1, 2, 5, 6, 1000} {
		got, err := c.GCRuns(ctx, limit)
		if err != nil {
			t.Fatalf("GCRuns(%d): %v", limit, err)
		}
		w := want[:min(limit, len(want))]
		if len(got) != len(w) {
			t.Errorf("GCRuns(%d) returned %d runs, want %d", limit, len(got), len(w))
			continue
		}
		for i := range w {
			if !sameRun(got[i], w[i]) {
				t.Errorf("GCRuns(%d)[%d] = %+v, want %+v", limit, i, got[i], w[i])
			}
		}
	}
	if last, err := c.LastGCRun(ctx); err != nil || !sameRun(last, want[0]) {
		t.Errorf("LastGCRun = %+v, %v; want GCRuns' first %+v", last, err, want[0])
	}
	for _, limit := range []int{0, -1} {
		if got, err := c.GCRuns(ctx, limit); err == nil {
			t.Errorf("GCRuns(%d) = %v, want an error", limit, got)
		}
	}
}
