package server

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/nix-cached/cached/internal/nixtest"
)

// TestMetricsNixPush pushes a closure with the real Nix client and reads
// it back with a fresh one: every upload is accepted and counted once per
// path, the lookups before the push are misses and those after are hits.
// It runs with every installed Nix client.
func TestMetricsNixPush(t *testing.T) { nixtest.Each(t, testMetricsNixPush) }

// testMetricsNixPush is TestMetricsNixPush with one Nix client.
func testMetricsNixPush(t *testing.T, nix *nixtest.Nix) {
	builder := nix.New(t)
	e := newMetricsEnv(t, true)
	n := nixtest.Nonce()
	d := nixtest.Derivation
	top := builder.Build(`let
  leaf = ` + d("leaf-"+n, `echo `+n+` > $out`) + `;
in ` + d("top-"+n, `mkdir $out; ln -s ${leaf} $out/leaf; seq 1 50000 > $out/data`))[0]
	closure := builder.Closure(top)
	paths := float64(len(closure))

	netrc := filepath.Join(t.TempDir(), "netrc")
	if err := os.WriteFile(netrc, []byte("machine 127.0.0.1 login nix password "+pushToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pusher := nix.New(t, "netrc-file = "+netrc)
	pusher.Run("nix", "copy", "--to", e.srv.URL+"?compression=xz&write-nar-listing=1", top)
	f := e.scrape()
	for _, kind := range []string{"nar", "narinfo", "listing"} {
		if got := f.get("cached_uploads_total", "kind", kind, "result", "accepted"); got != paths {
			t.Errorf("%s uploads accepted: %v, want %v", kind, got, paths)
		}
	}
	if got := f.get("cached_uploads_total", "result", "rejected") + f.get("cached_uploads_total", "result", "error"); got != 0 {
		t.Errorf("%v uploads not accepted", got)
	}
	misses := f.get("cached_narinfo_requests_total", "result", "miss")
	if misses < paths {
		t.Errorf("%v narinfo misses before the push, want at least %v", misses, paths)
	}
	if got, want := f.get("cached_http_request_bytes_total", "route", "/nar/{file}"), f.get("cached_http_request_bytes_total"); got == 0 || got >= want {
		t.Errorf("NAR request bytes %v of %v in all", got, want)
	}

	t.Logf("%v paths, %v misses", paths, misses)
	reader := nix.New(t)
	reader.Run("nix", "path-info", "--store", e.srv.URL, "-r", top)
	f = e.scrape()
	if got := f.get("cached_narinfo_requests_total", "result", "hit"); got < paths {
		t.Errorf("%v narinfo hits after the push, want at least %v", got, paths)
	}
	if got := f.get("cached_narinfo_requests_total", "result", "miss"); got != misses {
		t.Errorf("narinfo misses went from %v to %v reading pushed paths", misses, got)
	}
}
