package e2e

import (
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nix-cached/cached/internal/nixtest"
)

// wideExpr is a closure of n independent leaves and a top that references
// them all; the first n/4 leaves have the same contents, so their NARs are
// one file, which a parallel push may upload several times at once.
func wideExpr(nonce string, n int) string {
	return `let leaf = i: derivation { name = "leaf-${toString i}-` + nonce + `"; system = builtins.currentSystem; ` +
		`builder = "/bin/sh"; args = [ "-c" "echo ${if i < ` + strconv.Itoa(n/4) + ` then "same" else toString i} > $out" ]; }; ` +
		`leaves = builtins.genList leaf ` + strconv.Itoa(n) + `; ` +
		`in derivation { name = "wide-` + nonce + `"; system = builtins.currentSystem; builder = "/bin/sh"; ` +
		`args = [ "-c" "echo ${toString leaves} > $out" ]; }`
}

var logLine = regexp.MustCompile(`^time=(\S+) .* duration=(\S+)`)

// maxOverlap returns how many of the logged requests were in the server
// at the same moment, at most: each line is logged at its request's end,
// with its duration.
func maxOverlap(t *testing.T, lines []string) int {
	t.Helper()
	type edge struct {
		at    time.Time
		delta int
	}
	var edges []edge
	for _, l := range lines {
		m := logLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("request log line without time or duration: %s", l)
		}
		end, err := time.Parse(time.RFC3339Nano, m[1])
		d, derr := time.ParseDuration(m[2])
		if err != nil || derr != nil {
			t.Fatalf("request log line %s: %v %v", l, err, derr)
		}
		edges = append(edges, edge{end.Add(-d), 1}, edge{end, -1})
	}
	sort.Slice(edges, func(i, j int) bool {
		return edges[i].at.Before(edges[j].at) || edges[i].at.Equal(edges[j].at) && edges[i].delta < edges[j].delta
	})
	most, now := 0, 0
	for _, e := range edges {
		now += e.delta
		most = max(most, now)
	}
	return most
}

// TestParallelPush pushes a wide closure of 300 paths from a client that
// sees 16 CPUs: Nix ≥ 2.11 uploads up to that many paths at once, the
// same NAR more than once among them. Every path is published, `cached verify` is clean,
// and the closure substitutes back.
func TestParallelPush(t *testing.T) {
	nixtest.Each(t, func(t *testing.T, nix *nixtest.Nix) {
		srv := startCache(t, blobBackend{name: "disk"})
		builder := nix.New(t, "max-jobs = 4")
		top := builder.Build(wideExpr(nixtest.Nonce(), 300))[0]
		closure := builder.Closure(top)
		want := hashes(t, builder, closure)
		// Nix 2.34 uploads as many paths at once as it sees CPUs (up to
		// http-connections): as on a 16-core CI runner.
		pusher := nix.New(t, "netrc-file = "+netrc(t, srv.Token))
		pusher.CPUs = 16
		pusher.Run("nix", "copy", "--to", srv.URL+"?compression=zstd", top)

		puts := srv.requests("PUT")
		nars := 0
		for _, l := range puts {
			if strings.Contains(l, "path=/nar/") {
				nars++
			}
			if !strings.Contains(l, "status=204") {
				t.Errorf("a PUT failed: %s", l)
			}
		}
		most := maxOverlap(t, puts)
		t.Logf("%s pushed %d paths in %d PUTs (%d of NARs), at most %d at once", nix.Name, len(closure), len(puts), nars, most)
		if nix.AtLeast(2, 11) && most < 4 {
			t.Errorf("Nix %s never had more than %d uploads in the server at once", nix.Version, most)
		}
		srv.verify(t, blobBackend{name: "disk"})
		deleteLocally(t, builder, closure)
		substitute(t, nix, srv.URL, srv.Pub, top, want)
	})
}
