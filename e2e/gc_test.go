package e2e

import (
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nix-cached/cached/internal/nixtest"
)

// TestPathsOutliveLocalGC is the case retention exists for: a machine
// pushes its builds, then garbage-collects its own store. After a cached
// gc with a short retention in which only the top path was used, the whole
// closure of the top path comes back by substitution with nothing rebuilt;
// an unused closure pushed beside it is gone, and a pinned one stays.
func TestPathsOutliveLocalGC(t *testing.T) {
	nixtest.Each(t, testPathsOutliveLocalGC)
}

func testPathsOutliveLocalGC(t *testing.T, nix *nixtest.Nix) {
	b := blobBackend{name: "disk"}
	builder := nix.New(t)
	srv := startCache(t, b)
	push := nix.New(t, "netrc-file = "+netrc(t, srv.Token))

	used := builder.Build(closureExpr("used-" + nixtest.Nonce()))[0]
	unused := builder.Build(closureExpr("unused-" + nixtest.Nonce()))[0]
	pinned := builder.Build(closureExpr("pinned-" + nixtest.Nonce()))[0]
	usedClosure, unusedClosure, pinnedClosure := builder.Closure(used), builder.Closure(unused), builder.Closure(pinned)
	want := hashes(t, builder, usedClosure)
	push.Run("nix", "copy", "--to", srv.URL, used, unused, pinned)
	pushed := time.Now()
	cachedCmd(t, srv.Dir, "pin", "add", "release", pinned, "--data-dir", srv.Data, "--keep", "2")

	// The machine collects its own store.
	deleteLocally(t, builder, usedClosure)

	// Later, only the top path is used (as `nix path-info` or a
	// substitution would), then the server stops, flushing that use.
	time.Sleep(3 * time.Second)
	if code, _ := srv.do("HEAD", "/"+filepath.Base(used)[:32]+".narinfo", "", nil); code != 200 {
		t.Fatalf("HEAD narinfo: %d", code)
	}
	srv.stop()

	// Retention shorter than the time since the push, longer than the time
	// since the use: the dependencies live only through the top path.
	retention := time.Since(pushed) - 1500*time.Millisecond
	gcArgs := []string{"--data-dir", srv.Data, "--retention", retention.String()}
	dry := cachedCmd(t, srv.Dir, append([]string{"gc", "--dry-run"}, gcArgs...)...)
	planned := removedPaths(dry, "would remove")
	if !sameSet(planned, unusedClosure) {
		t.Fatalf("dry run plans to remove %v, want the unused closure %v:\n%s", planned, unusedClosure, dry)
	}
	out := cachedCmd(t, srv.Dir, append([]string{"gc"}, gcArgs...)...)
	if removed := removedPaths(out, "removed"); !sameSet(removed, planned) {
		t.Fatalf("gc removed %v, the dry run planned %v:\n%s", removed, planned, out)
	}
	srv.verify(t, b)

	srv.proc = start(t, srv.Dir, b.env, "--listen", "127.0.0.1:0", "--data-dir", srv.Data,
		"--push-token-file", filepath.Join(srv.Dir, "tokens"))
	// The collection cached gc ran shows in the new server's metrics, as
	// does what the cache holds.
	_, met := srv.get("/metrics", "")
	for _, want := range []string{"\ncached_gc_recorded_removed_paths 4\n", "\ncached_stored_paths 8\n", "\ncached_gc_recorded_live_paths 8\n"} {
		if !strings.Contains(met, want) {
			t.Errorf("/metrics lacks %q", strings.TrimSpace(want))
		}
	}
	substitute(t, nix, srv.URL, srv.Pub, used, want)
	for _, p := range unusedClosure {
		if code, _ := srv.get("/"+filepath.Base(p)[:32]+".narinfo", ""); code != 404 {
			t.Errorf("%s survived the collection: %d", p, code)
		}
	}
	for _, p := range pinnedClosure {
		if code, _ := srv.get("/"+filepath.Base(p)[:32]+".narinfo", ""); code != 200 {
			t.Errorf("pinned %s was collected: %d", p, code)
		}
	}
	stats := cachedCmd(t, srv.Dir, "stats", "--data-dir", srv.Data)
	if !regexp.MustCompile(`(?m)^paths\s+8$`).MatchString(stats) || !strings.Contains(stats, "removed 4 paths") {
		t.Errorf("stats after the collection:\n%s", stats)
	}
	// A collection (default retention) beside the running server.
	if again := cachedCmd(t, srv.Dir, "gc", "--data-dir", srv.Data); len(removedPaths(again, "removed")) != 0 {
		t.Errorf("a second collection removed paths:\n%s", again)
	}
}

// removedPaths picks the store paths of the lines starting with verb.
func removedPaths(out, verb string) []string {
	var paths []string
	for _, l := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(l, verb); ok {
			if f := strings.Fields(rest); len(f) > 0 && strings.HasPrefix(f[0], "/nix/store/") {
				paths = append(paths, f[0])
			}
		}
	}
	return paths
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestScheduledGC: `cached serve --gc-interval` collects on its own,
// counting from the last collection recorded in the catalog.
func TestScheduledGC(t *testing.T) {
	nixtest.Each(t, testScheduledGC)
}

func testScheduledGC(t *testing.T, nix *nixtest.Nix) {
	b := blobBackend{name: "disk"}
	builder := nix.New(t)
	first := startCache(t, b)
	top := builder.Build(nixtest.Derivation("scheduled-"+nixtest.Nonce(), `echo $out > $out`))[0]
	nix.New(t, "netrc-file = "+netrc(t, first.Token)).Run("nix", "copy", "--to", first.URL, top)
	first.stop()
	// A first collection, recorded in the catalog, that keeps everything.
	cachedCmd(t, first.Dir, "gc", "--data-dir", first.Data)

	time.Sleep(2 * time.Second)
	srv := start(t, first.Dir, nil, "--listen", "127.0.0.1:0", "--data-dir", first.Data,
		"--push-token-file", filepath.Join(first.Dir, "tokens"), "--gc-interval", "1s", "--retention", "1s")
	waitFor(t, func() bool { return strings.Contains(srv.Stderr.String(), "garbage collection done") })
	if code, _ := srv.get("/"+filepath.Base(top)[:32]+".narinfo", ""); code != 404 {
		t.Errorf("the unused path survived the scheduled collection: %d", code)
	}
	if !regexp.MustCompile(`garbage collection done" removed_paths=1 `).MatchString(srv.Stderr.String()) {
		t.Errorf("server log:\n%s", srv.Stderr)
	}
}
