package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nix-cached/cached/internal/nixtest"
)

// closureExpr is a closure of several paths: a small file, a multi-MiB
// file, a directory with an executable and symlinks, and a top path that
// references the others.
func closureExpr(nonce string) string {
	d := nixtest.Derivation
	return `let
  file = ` + d("file-"+nonce, `echo hello `+nonce+` > $out`) + `;
  big = ` + d("big-"+nonce, `head -c 4000000 /dev/urandom > $out; seq 1 300000 >> $out`) + `;
  tree = ` + d("tree-"+nonce, `mkdir -p $out/bin $out/share/doc; printf '#!/bin/sh\necho hi\n' > $out/bin/hello; chmod +x $out/bin/hello; ln -s ${file} $out/share/file; ln -s ../bin/hello $out/share/hello; touch $out/share/doc/empty`) + `;
in ` + d("top-"+nonce, `mkdir $out; echo ${tree} ${big} > $out/refs; ln -s ${tree}/bin/hello $out/run`)
}

// nixRunner runs a Nix command on a store and returns its standard output,
// failing the test if it fails: a *nixtest.Client, or a container.
type nixRunner interface {
	Run(name string, args ...string) string
}

// hashes returns the NAR hash of each path, as the local store records it.
func hashes(t *testing.T, c nixRunner, paths []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, p := range paths {
		out[p] = strings.TrimSpace(c.Run("nix-store", "-q", "--hash", p))
	}
	return out
}

// deleteLocally removes paths from the local store and checks they are gone.
func deleteLocally(t *testing.T, c *nixtest.Client, paths []string) {
	t.Helper()
	c.Run("nix-store", append([]string{"--delete"}, paths...)...)
	for _, p := range paths {
		if _, err := os.Lstat(c.Path(p)); !os.IsNotExist(err) {
			t.Fatalf("%s still exists after nix-store --delete", p)
		}
	}
}

// substitute realises top from the server with a fresh client of nix,
// trusting only key, and checks that every path came back by substitution
// with its original hash.
func substitute(t *testing.T, nix *nixtest.Nix, url, key, top string, want map[string]string) {
	t.Helper()
	substituteWith(t, nix, url, key, top, want)
}

// substituteWith is substitute with extra nix.conf lines.
func substituteWith(t *testing.T, nix *nixtest.Nix, url, key, top string, want map[string]string, extraConf ...string) {
	t.Helper()
	substituteBy(t, nix.New(t, append([]string{"substituters = " + url, "trusted-public-keys = " + key}, extraConf...)...), url, top, want)
}

// substituteBy is substitute by a client whose nix.conf has url as its
// substituter and trusts its key.
func substituteBy(t *testing.T, c *nixtest.Client, url, top string, want map[string]string) {
	t.Helper()
	_, stderr, err := c.Try("nix-store", "-r", top)
	if err != nil {
		t.Fatalf("substituting %s: %v\n%s", top, err, stderr)
	}
	checkSubstituted(t, c, url, stderr, want)
	c.Run("nix-store", append([]string{"--verify-path"}, keys(want)...)...)
}

// checkSubstituted checks, from the log of a realisation by c, that every
// path of want was copied from the cache at url, and that it has its
// original hash.
func checkSubstituted(t *testing.T, c nixRunner, url, log string, want map[string]string) {
	t.Helper()
	got := hashes(t, c, keys(want))
	for p, h := range want {
		if !strings.Contains(log, "copying path '"+p+"' from '"+url) {
			t.Errorf("%s was not substituted from the cache:\n%s", p, log)
		}
		if got[p] != h {
			t.Errorf("%s: hash %s after substitution, %s before", p, got[p], h)
		}
	}
}

// keys returns the keys of m, in no particular order.
func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestPushSubstituteRestart pushes a closure with every client to a server
// on every storage backend, with and without a token, substitutes it back,
// refuses a wrong key, and substitutes again after a restart.
func TestPushSubstituteRestart(t *testing.T) {
	nixtest.Each(t, func(t *testing.T, nix *nixtest.Nix) {
		eachBackend(t, func(t *testing.T, b blobBackend) { testPushSubstituteRestart(t, nix, b) })
	})
}

func testPushSubstituteRestart(t *testing.T, nix *nixtest.Nix, b blobBackend) {
	builder := nix.New(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	sk, pk := filepath.Join(dir, "sk"), filepath.Join(dir, "pk")
	cachedCmd(t, dir, "keygen", "e2e-cache-1", sk, pk)
	pub := readFile(t, pk)
	token := "e2e-push-token-" + nixtest.Nonce()
	tokens := filepath.Join(dir, "push-tokens")
	writeFile(t, tokens, "# push tokens\n"+token+"\n")
	args := append([]string{"--listen", "127.0.0.1:0", "--data-dir", data, "--signing-key-file", sk, "--push-token-file", tokens}, b.args()...)
	srv := start(t, dir, b.env, args...)
	if !strings.Contains(srv.Stdout.String(), "public key: "+pub) {
		t.Fatalf("the public key is not printed at start:\n%s", srv.Stdout)
	}
	if code, body := srv.get("/public-key", ""); code != 200 || strings.TrimSpace(body) != pub {
		t.Fatalf("/public-key: %d %q, want %q", code, body, pub)
	}

	nonce := nixtest.Nonce()
	top := builder.Build(closureExpr(nonce))[0]
	closure := builder.Closure(top)
	if len(closure) != 4 {
		t.Fatalf("closure of %s: %v", top, closure)
	}
	want := hashes(t, builder, closure)

	// A push without a token is refused and leaves nothing behind.
	anon := nix.New(t)
	if _, stderr, err := anon.Try("nix", "copy", "--to", srv.URL, top); err == nil {
		t.Fatalf("push without a token succeeded:\n%s", stderr)
	}
	for _, p := range closure {
		if code, _ := srv.get("/"+filepath.Base(p)[:32]+".narinfo", ""); code != 404 {
			t.Fatalf("after a refused push, %s.narinfo answers %d", p, code)
		}
	}
	if keys := b.blobKeys(t, data, ""); len(keys) != 0 {
		t.Fatalf("a refused push left blobs: %v", keys)
	}

	// A push with the token through netrc, xz-compressed and signed by the
	// client too, with listings.
	csk, cpk := filepath.Join(dir, "client-sk"), filepath.Join(dir, "client-pk")
	builder.Run("nix-store", "--generate-binary-cache-key", "e2e-client-1", csk, cpk)
	pusher := nix.New(t, "netrc-file = "+netrc(t, token))
	pusher.Run("nix", "copy", "--to", srv.URL+"?compression=xz&write-nar-listing=1&secret-key="+csk, top)
	for _, p := range closure {
		code, ni := srv.get("/"+filepath.Base(p)[:32]+".narinfo", "")
		if code != 200 {
			t.Fatalf("%s.narinfo: %d", p, code)
		}
		for _, want := range []string{"StorePath: " + p + "\n", "Compression: zstd\n", "Sig: e2e-cache-1:", "Sig: e2e-client-1:"} {
			if !strings.Contains(ni, want) {
				t.Errorf("narinfo of %s lacks %q:\n%s", p, want, ni)
			}
		}
		url := regexp.MustCompile(`URL: (\S+)`).FindStringSubmatch(ni)
		if url == nil || !strings.HasSuffix(url[1], ".nar.zst") {
			t.Fatalf("narinfo of %s does not name a zstd NAR:\n%s", p, ni)
		}
		if code, _ := srv.get("/"+url[1], ""); code != 200 {
			t.Errorf("GET %s: %d", url[1], code)
		}
	}

	// The push shows in the metrics: four NARs and four narinfos accepted.
	_, met := srv.get("/metrics", "")
	for _, kind := range []string{"nar", "narinfo"} {
		if want := `cached_uploads_total{kind="` + kind + `",result="accepted"} 4`; !strings.Contains(met, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// Pushing the same closure again, from a client with an empty narinfo
	// cache, uploads nothing.
	puts := len(srv.requests("PUT"))
	again := nix.New(t, "netrc-file = "+netrc(t, token))
	again.Run("nix", "copy", "--to", srv.URL, top)
	if n := len(srv.requests("PUT")) - puts; n != 0 {
		t.Errorf("pushing the same closure again made %d PUT requests", n)
	}

	// Delete the closure locally and substitute it back, trusting only the
	// server's key.
	deleteLocally(t, builder, closure)
	substitute(t, nix, srv.URL, pub, top, want)

	// A different key with the same name is refused.
	deleteLocally(t, builder, closure)
	wsk, wpk := filepath.Join(dir, "wrong-sk"), filepath.Join(dir, "wrong-pk")
	builder.Run("nix-store", "--generate-binary-cache-key", "e2e-cache-1", wsk, wpk)
	wrong := nix.New(t, "substituters = "+srv.URL, "trusted-public-keys = "+readFile(t, wpk))
	if _, stderr, err := wrong.Try("nix-store", "-r", top); err == nil {
		t.Fatalf("substitution trusting a wrong key succeeded:\n%s", stderr)
	}
	if _, err := os.Lstat(wrong.Path(top)); !os.IsNotExist(err) {
		t.Fatalf("%s appeared although its signature is not trusted", top)
	}

	// Restart on the same data and substitute again.
	srv.stop()
	srv = start(t, dir, b.env, args...)
	substitute(t, nix, srv.URL, pub, top, want)
	if out := cachedCmd(t, dir, append([]string{"verify", "--contents", "--data-dir", data}, b.args()...)...); !strings.Contains(out, ": OK") {
		t.Errorf("cached verify:\n%s", out)
	}
}
