package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/nix-cached/cached/internal/nixtest"
)

// compressions are those Nix writes without an external program.
var compressions = []string{"xz", "zstd", "bzip2", "br", "gzip", "lz4", "lzip", "lzma", "none"}

// TestPushEveryCompression pushes a path in every compression Nix offers,
// with a listing and its build log; Nix ≥ 2.32 also compresses the
// narinfo, the listing and the log on the wire (narinfo-compression and
// friends, a Content-Encoding). Every path then substitutes back into an
// empty store, and the log reads back as Nix wrote it.
func TestPushEveryCompression(t *testing.T) {
	nixtest.Each(t, func(t *testing.T, nix *nixtest.Nix) {
		srv := startCache(t, blobBackend{name: "disk"})
		builder := nix.New(t)
		pusher := nix.New(t, "netrc-file = "+netrc(t, srv.Token))
		nonce := nixtest.Nonce()
		for _, comp := range compressions {
			t.Run(comp, func(t *testing.T) {
				top := builder.Build(nixtest.Derivation("comp-"+comp+"-"+nonce,
					`mkdir -p $out/bin; seq 1 20000 > $out/data; echo `+comp+` > $out/bin/name; echo log line for `+comp))[0]
				want := hashes(t, builder, []string{top})
				to := srv.URL + "?compression=" + comp + "&write-nar-listing=1"
				if nix.AtLeast(2, 32) {
					to += "&narinfo-compression=" + comp + "&ls-compression=" + comp + "&log-compression=" + comp
				}
				pusher.Run("nix", "copy", "--to", to, top)
				drv := strings.TrimSpace(builder.Run("nix-store", "-q", "--deriver", top))
				pusher.Run("nix", "store", "copy-log", "--to", to, drv)

				hash := filepath.Base(top)[:32]
				if code, _ := srv.get("/"+hash+".ls", ""); code != 200 {
					t.Errorf("listing of %s: %d", top, code)
				}
				code, log := srv.get("/log/"+filepath.Base(drv), "")
				if local := builder.Run("nix", "log", drv); code != 200 || log != local {
					t.Errorf("log of %s: %d %q, want %q", drv, code, log, local)
				}
				deleteLocally(t, builder, []string{top})
				substitute(t, nix, srv.URL, srv.Pub, top, want)
			})
		}
		srv.verify(t, blobBackend{name: "disk"})
	})
}
