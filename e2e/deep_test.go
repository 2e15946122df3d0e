package e2e

import (
	"strings"
	"testing"

	"github.com/nix-cached/cached/internal/nixtest"
)

// TestPushDeep pushes a path nested 1,000 directories deep, which Nix 2.8
// builds and stores (Nix 2.34 refuses anything 64 deep or more, so only
// the host's client runs this), and substitutes it back byte-identical:
// the cache takes every path a client it supports can push.
func TestPushDeep(t *testing.T) {
	nix := nixtest.Host(t)
	if nix.AtLeast(2, 34) {
		t.Skipf("Nix %s refuses archives nested 64 deep", nix.Version)
	}
	srv := startCache(t, blobBackend{name: "disk"})
	builder := nix.New(t, "netrc-file = "+netrc(t, srv.Token))
	n := nixtest.Nonce()
	top := builder.Build(nixtest.Derivation("deep-"+n,
		"d=$out; for i in $(seq 1000); do d=$d/d; done; mkdir -p $d; echo "+n+" > $d/f"))[0]
	want := hashes(t, builder, []string{top})
	if _, stderr, err := builder.Try("nix", "copy", "--to", srv.URL, top); err != nil {
		t.Fatalf("nix copy --to of a path 1,000 directories deep: %v\n%s", err, stderr)
	}
	if code, body := srv.get("/"+strings.TrimPrefix(top, "/nix/store/")[:32]+".narinfo", ""); code != 200 {
		t.Fatalf("narinfo after the push: %d %s", code, body)
	}
	deleteLocally(t, builder, []string{top})
	substitute(t, nix, srv.URL, srv.Pub, top, want)
}
