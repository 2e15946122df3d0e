package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nix-cached/cached/internal/nixtest"
)

// TestPullThrough mirrors a closure that exists only upstream: a client
// whose only substituter is the downstream cache, trusting only its key,
// substitutes it; the upstream stops, the client's store is collected, and
// the closure substitutes again from the downstream cache alone. The
// upstream is another cached.
func TestPullThrough(t *testing.T) {
	nixtest.Each(t, func(t *testing.T, nix *nixtest.Nix) {
		up := startCache(t, blobBackend{name: "disk"})
		builder := nix.New(t, "netrc-file = "+netrc(t, up.Token))
		top := builder.Build(closureExpr("pull-" + nixtest.Nonce()))[0]
		closure := builder.Closure(top)
		want := hashes(t, builder, closure)
		builder.Run("nix", "copy", "--to", up.URL, top)
		deleteLocally(t, builder, closure)

		down := startCache(t, blobBackend{name: "disk"}, "--upstream", up.URL, "--upstream-key", up.Pub)
		// The downstream cache's key only: the narinfos it mirrors carry
		// its signature.
		substitute(t, nix, down.URL, down.Pub, top, want)

		up.stop()
		deleteLocally(t, builder, closure)
		substitute(t, nix, down.URL, down.Pub, top, want)
		down.verify(t, blobBackend{name: "disk"})
		out := cachedCmd(t, down.Dir, "stats", "--data-dir", down.Data)
		if !strings.Contains(out, "paths") {
			t.Errorf("stats: %s", out)
		}
	})
}

// TestPullThroughRefuses configures an upstream with a key that did not
// sign its narinfos: nothing is served or stored, and Nix, finding no
// substitute, says so.
func TestPullThroughRefuses(t *testing.T) {
	nix := nixtest.Host(t)
	up := startCache(t, blobBackend{name: "disk"})
	builder := nix.New(t, "netrc-file = "+netrc(t, up.Token))
	top := builder.Build(closureExpr("pull-bad-" + nixtest.Nonce()))[0]
	closure := builder.Closure(top)
	builder.Run("nix", "copy", "--to", up.URL, top)
	deleteLocally(t, builder, closure)

	other := startCache(t, blobBackend{name: "disk"}) // its key, not up's
	down := startCache(t, blobBackend{name: "disk"}, "--upstream", up.URL, "--upstream-key", other.Pub)
	if code, _ := down.get("/"+filepath.Base(top)[:32]+".narinfo", ""); code != 404 {
		t.Errorf("a narinfo signed by an unconfigured key answers %d, want 404", code)
	}
	c := nix.New(t, "substituters = "+down.URL, "trusted-public-keys = "+down.Pub)
	if _, stderr, err := c.Try("nix-store", "-r", top); err == nil {
		t.Errorf("substituted a path whose upstream narinfo is signed by an unconfigured key:\n%s", stderr)
	}
	ents, _ := os.ReadDir(filepath.Join(down.Data, "blobs", "nar"))
	if len(ents) != 0 {
		t.Errorf("the downstream cache stored %d NAR directories", len(ents))
	}
}
