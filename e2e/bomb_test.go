package e2e

import (
	"strings"
	"testing"

	"github.com/nix-cached/cached/internal/nixtest"
)

// TestMaxNARSize pushes a path whose NAR is over the cache's
// --max-nar-size: nix copy fails with the cache's reason, nothing is
// published, and a path under the limit is still taken.
func TestMaxNARSize(t *testing.T) {
	nixtest.Each(t, func(t *testing.T, nix *nixtest.Nix) {
		srv := startCache(t, blobBackend{name: "disk"}, "--max-nar-size", "1MiB")
		pusher := nix.New(t, "netrc-file = "+netrc(t, srv.Token))
		n := nixtest.Nonce()
		big := pusher.Build(nixtest.Derivation("big-"+n, "head -c 2097152 /dev/zero > $out"))[0]
		small := pusher.Build(nixtest.Derivation("small-"+n, "head -c 1000 /dev/zero > $out"))[0]
		_, stderr, err := pusher.Try("nix", "copy", "--to", srv.URL+"?compression=zstd", big)
		if err == nil || !strings.Contains(stderr, "413") || !strings.Contains(stderr, "the NAR expands to more than 1048576 bytes (--max-nar-size)") {
			t.Errorf("pushing a 2 MiB path to a cache that takes 1 MiB: %v\n%s", err, stderr)
		}
		if code, _ := srv.get("/"+strings.TrimPrefix(big, "/nix/store/")[:32]+".narinfo", ""); code != 404 {
			t.Errorf("the refused path's narinfo answers %d", code)
		}
		if _, stderr, err := pusher.Try("nix", "copy", "--to", srv.URL+"?compression=zstd", small); err != nil {
			t.Errorf("pushing a path under the limit: %v\n%s", err, stderr)
		}
	})
}
