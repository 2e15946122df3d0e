package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nix-cached/cached/internal/nixtest"
	"github.com/nix-cached/cached/internal/testtool"
)

// smallClosure is a path and the one it references.
func smallClosure(nonce string) string {
	d := nixtest.Derivation
	return `let lib = ` + d("lib-"+nonce, `echo lib `+nonce+` > $out`) + `;
in ` + d("app-"+nonce, `mkdir $out; echo ${lib} > $out/lib`)
}

// TestPullThroughRetention: a mirrored path lives --mirror-retention after
// its last use when an upstream still has it. `cached gc --dry-run` and
// `cached gc` remove such paths, and only those: a pushed path, a pinned
// mirrored closure, and everything while no upstream can be asked keep
// the full retention. verify stays clean, and a removed path is mirrored
// again on its next substitution.
func TestPullThroughRetention(t *testing.T) {
	nix := nixtest.Host(t)
	b := blobBackend{name: "disk"}
	up := startCache(t, b)
	builder := nix.New(t, "netrc-file = "+netrc(t, up.Token))
	nonce := nixtest.Nonce()
	mirrored := builder.Build(smallClosure("mirrored-" + nonce))[0]
	pinned := builder.Build(smallClosure("pinned-" + nonce))[0]
	own := builder.Build(smallClosure("own-" + nonce))[0]
	mirroredC, pinnedC, ownC := builder.Closure(mirrored), builder.Closure(pinned), builder.Closure(own)
	wantM, wantP := hashes(t, builder, mirroredC), hashes(t, builder, pinnedC)
	builder.Run("nix", "copy", "--to", up.URL, mirrored, pinned)

	upstreamArgs := []string{"--upstream", up.URL, "--upstream-key", up.Pub}
	down := startCache(t, b, upstreamArgs...)
	nix.New(t, "netrc-file = "+netrc(t, down.Token)).Run("nix", "copy", "--to", down.URL, own)
	deleteLocally(t, builder, append(append(mirroredC, pinnedC...), ownC...))
	substitute(t, nix, down.URL, down.Pub, mirrored, wantM)
	substitute(t, nix, down.URL, down.Pub, pinned, wantP)
	cachedCmd(t, down.Dir, "pin", "add", "keep", pinned, "--data-dir", down.Data)
	down.stop() // flushes the uses
	time.Sleep(3 * time.Second)

	gcArgs := []string{"--data-dir", down.Data, "--retention", "1h", "--mirror-retention", "2s", "--upstream-key", up.Pub}
	dead := "http://" + testtool.FreeAddr(t)
	out := cachedCmd(t, down.Dir, append([]string{"gc", "--dry-run", "--upstream", dead}, gcArgs...)...)
	if got := removedPaths(out, "would remove"); len(got) != 0 {
		t.Errorf("with no upstream to ask, gc --dry-run plans to remove %v:\n%s", got, out)
	}
	dry := cachedCmd(t, down.Dir, append([]string{"gc", "--dry-run", "--upstream", up.URL}, gcArgs...)...)
	planned := removedPaths(dry, "would remove")
	if !sameSet(planned, mirroredC) {
		t.Fatalf("gc --dry-run plans to remove %v, want the unpinned mirrored closure %v:\n%s", planned, mirroredC, dry)
	}
	if !strings.Contains(dry, "mirror retention 2s") {
		t.Errorf("gc --dry-run does not give the mirror retention as the reason:\n%s", dry)
	}
	out = cachedCmd(t, down.Dir, append([]string{"gc", "--upstream", up.URL}, gcArgs...)...)
	if removed := removedPaths(out, "removed"); !sameSet(removed, planned) {
		t.Fatalf("gc removed %v, the dry run planned %v:\n%s", removed, planned, out)
	}
	down.verify(t, b)

	down.proc = start(t, down.Dir, b.env, append([]string{"--listen", "127.0.0.1:0", "--data-dir", down.Data,
		"--push-token-file", filepath.Join(down.Dir, "tokens")}, upstreamArgs...)...)
	for _, p := range append(pinnedC, ownC...) {
		if code, _ := down.get("/"+filepath.Base(p)[:32]+".narinfo", ""); code != 200 {
			t.Errorf("%s was collected: %d", p, code)
		}
	}
	deleteLocally(t, builder, mirroredC)
	substitute(t, nix, down.URL, down.Pub, mirrored, wantM)
	down.stop()
	down.verify(t, b)
	if stats := cachedCmd(t, down.Dir, "stats", "--data-dir", down.Data); !strings.Contains(stats, "removed 2 paths") {
		t.Errorf("stats after the collection:\n%s", stats)
	}
}
