package e2e

import (
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nix-cached/cached/internal/nixtest"
)

// TestPrivateCacheURLCredential reads a private cache from a client that
// gets only a substituter URL and a key, as Flox's proxy container does:
// a read token travels in the URL (http://cached:TOKEN@host), which Nix
// sends as HTTP Basic authentication. Without it, the cache answers 401
// and nothing comes back.
func TestPrivateCacheURLCredential(t *testing.T) {
	nixtest.Each(t, func(t *testing.T, nix *nixtest.Nix) {
		readTokens := filepath.Join(t.TempDir(), "read-tokens")
		writeFile(t, readTokens, "file-read-"+nixtest.Nonce()+"\n") // makes reads private
		srv := startCache(t, blobBackend{name: "disk"}, "--read-token-file", readTokens)
		read := strings.TrimSpace(cachedCmd(t, srv.Dir, "token", "create", "--scope", "read", "--name", "container", "--data-dir", srv.Data))
		builder := nix.New(t)
		top := builder.Build(closureExpr("private-url-" + nixtest.Nonce()))[0]
		closure := builder.Closure(top)
		want := hashes(t, builder, closure)
		nix.New(t, "netrc-file = "+netrc(t, srv.Token)).Run("nix", "copy", "--to", srv.URL, top)
		deleteLocally(t, builder, closure)

		u, _ := url.Parse(srv.URL)
		anon := nix.New(t, "substituters = "+srv.URL, "trusted-public-keys = "+srv.Pub)
		if _, log, err := anon.Try("nix-store", "-r", top); err == nil {
			t.Fatalf("substituted from a private cache without a credential:\n%s", log)
		}
		u.User = url.UserPassword("cached", read)
		substituteWith(t, nix, u.String(), srv.Pub, top, want)

		// cached use takes the same URL and writes it as it is.
		m := newMachine(t, nix)
		m.cached("use", u.String())
		if conf := readFile(t, m.conf); !strings.Contains(conf, "extra-substituters = "+u.String()+"\n") {
			t.Errorf("nix.conf after cached use:\n%s", conf)
		}
	})
}
