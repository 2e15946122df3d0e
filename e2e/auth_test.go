package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nix-cached/cached/internal/nixtest"
)

// TestPrivateCacheTwoKeys runs a cache whose reads need a token, signing
// with two keys: one made by Nix and one by `cached keygen`. Nix reads
// with the token from its netrc, trusting either key alone.
func TestPrivateCacheTwoKeys(t *testing.T) {
	nixtest.Each(t, testPrivateCacheTwoKeys)
}

func testPrivateCacheTwoKeys(t *testing.T, nix *nixtest.Nix) {
	builder := nix.New(t)
	dir := t.TempDir()
	nixSK, nixPK := filepath.Join(dir, "nix-sk"), filepath.Join(dir, "nix-pk")
	builder.Run("nix-store", "--generate-binary-cache-key", "made-by-nix-1", nixSK, nixPK)
	ourSK, ourPK := filepath.Join(dir, "our-sk"), filepath.Join(dir, "our-pk")
	cachedCmd(t, dir, "keygen", "made-by-cached-1", ourSK, ourPK)
	writeFile(t, filepath.Join(dir, "push"), "push-"+nixtest.Nonce()+"\n")
	writeFile(t, filepath.Join(dir, "read"), "read-"+nixtest.Nonce()+"\n")
	srv := start(t, dir, nil, "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"),
		"--signing-key-file", nixSK, "--signing-key-file", ourSK,
		"--push-token-file", filepath.Join(dir, "push"), "--read-token-file", filepath.Join(dir, "read"))

	nonce := nixtest.Nonce()
	top := builder.Build(closureExpr(nonce))[0]
	closure := builder.Closure(top)
	want := hashes(t, builder, closure)
	pushToken := readFile(t, filepath.Join(dir, "push"))
	readToken := readFile(t, filepath.Join(dir, "read"))
	nix.New(t, "netrc-file = "+netrc(t, pushToken[:len(pushToken)-1])).Run("nix", "copy", "--to", srv.URL, top)

	if code, _ := srv.get("/"+filepath.Base(top)[:32]+".narinfo", ""); code != 401 {
		t.Fatalf("an anonymous narinfo read got %d, want 401", code)
	}
	readNetrc := "netrc-file = " + netrc(t, readToken[:len(readToken)-1])
	for _, key := range []string{readFile(t, nixPK), readFile(t, ourPK)} {
		deleteLocally(t, builder, closure)
		anon := nix.New(t, "substituters = "+srv.URL, "trusted-public-keys = "+key)
		if _, stderr, err := anon.Try("nix-store", "-r", top); err == nil {
			t.Fatalf("substitution from a private cache without a token succeeded:\n%s", stderr)
		}
		if _, err := os.Lstat(anon.Path(top)); !os.IsNotExist(err) {
			t.Fatal("a path appeared without a read token")
		}
		substituteWith(t, nix, srv.URL, key, top, want, readNetrc)
	}
}

// TestPrivateFlag makes a cache private with --private alone: a read token
// made with `cached token create --scope read` reads, no token gets 401,
// and a push with the read token is refused with a 403 that says why.
func TestPrivateFlag(t *testing.T) {
	nixtest.Each(t, func(t *testing.T, nix *nixtest.Nix) {
		srv := startCache(t, blobBackend{name: "disk"}, "--private")
		readToken := strings.TrimSpace(cachedCmd(t, srv.Dir, "token", "create", "--scope", "read", "--name", "reader", "--data-dir", srv.Data))
		builder := nix.New(t, "netrc-file = "+netrc(t, srv.Token))
		top := builder.Build(closureExpr("private-" + nixtest.Nonce()))[0]
		closure := builder.Closure(top)
		want := hashes(t, builder, closure)
		builder.Run("nix", "copy", "--to", srv.URL, top)
		if code, _ := srv.get("/"+filepath.Base(top)[:32]+".narinfo", ""); code != 401 {
			t.Fatalf("an anonymous narinfo read got %d, want 401", code)
		}
		readNetrc := "netrc-file = " + netrc(t, readToken)
		deleteLocally(t, builder, closure)
		substituteWith(t, nix, srv.URL, srv.Pub, top, want, readNetrc)

		other := nix.New(t, readNetrc).Build(smallClosure("private-push-" + nixtest.Nonce()))[0]
		_, stderr, err := nix.New(t, readNetrc).Try("nix", "copy", "--to", srv.URL, other)
		if err == nil {
			t.Fatal("a push with a read token succeeded")
		}
		if !strings.Contains(stderr, "403") {
			t.Errorf("nix copy with a read token does not show the 403:\n%s", stderr)
		}
		if puts := srv.requests("PUT"); len(puts) == 0 || !strings.Contains(puts[len(puts)-1], "status=403") {
			t.Errorf("the refused PUT is not logged as a 403: %v", puts)
		}
	})
}
