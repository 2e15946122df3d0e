package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nix-cached/cached/internal/nginxtest"
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

// TestPullThroughStatic mirrors from nginx serving a static cache that
// `nix copy --to file://...?secret-key=...` wrote, over HTTP and over
// HTTPS with a test CA (--upstream-ca-file): the closure substitutes
// through cached, then again from cached alone once nginx is stopped. Two
// clients substituting the same large NAR at once (nginx sending at 2
// MiB/s) cause one download from nginx; a push fetches no NAR from it.
func TestPullThroughStatic(t *testing.T) {
	nixtest.Each(t, func(t *testing.T, nix *nixtest.Nix) {
		for _, tls := range []bool{false, true} {
			t.Run(map[bool]string{false: "http", true: "https"}[tls], func(t *testing.T) {
				testPullThroughStatic(t, nix, tls)
			})
		}
	})
}

func testPullThroughStatic(t *testing.T, nix *nixtest.Nix, tls bool) {
	dir := t.TempDir()
	sk, pk := filepath.Join(dir, "sk"), filepath.Join(dir, "pk")
	cachedCmd(t, dir, "keygen", "static-upstream-1", sk, pk)
	builder := nix.New(t)
	top := builder.Build(closureExpr("static-" + nixtest.Nonce()))[0]
	closure := builder.Closure(top)
	want := hashes(t, builder, closure)
	static := filepath.Join(dir, "static")
	builder.Run("nix", "copy", "--to", "file://"+static+"?secret-key="+sk, top)
	deleteLocally(t, builder, closure)

	up := nginxtest.Start(t, static, nginxtest.Options{TLS: tls, LimitRate: "2m"})
	args := []string{"--upstream", up.URL, "--upstream-key", readFile(t, pk)}
	if tls {
		args = append(args, "--upstream-ca-file", up.CAFile)
	}
	down := startCache(t, blobBackend{name: "disk"}, args...)

	// Two clients at once for the big path: one download from nginx.
	var big string
	for _, p := range closure {
		if strings.Contains(p, "-big-") {
			big = p
		}
	}
	// Each copies into a store of its own, so neither waits for the
	// other's lock on the path.
	errs := make(chan error, 2)
	for range 2 {
		c := nix.New(t, "trusted-public-keys = "+down.Pub)
		to := "local?root=" + t.TempDir()
		go func() {
			_, stderr, err := c.Try("nix", "copy", "--from", down.URL, "--to", to, big)
			if err != nil {
				err = fmt.Errorf("%w\n%s", err, stderr)
			}
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("copying %s through cached: %v", big, err)
		}
	}
	if got := up.Requests(t, "/nar/"); len(got) != 1 {
		t.Errorf("nginx sent the big NAR %d times, want once: %v", len(got), got)
	}

	substitute(t, nix, down.URL, down.Pub, top, want)

	// A push of paths upstream lacks asks it for their narinfos (Nix
	// asks the cache with a GET, as a substitution does), but fetches no
	// NAR from it, and every path is uploaded and served.
	pusher := nix.New(t, "netrc-file = "+netrc(t, down.Token))
	mine := pusher.Build(closureExpr("static-push-" + nixtest.Nonce()))[0]
	nars := len(up.Requests(t, "/nar/"))
	pusher.Run("nix", "copy", "--to", down.URL, mine)
	if got := up.Requests(t, "/nar/"); len(got) != nars {
		t.Errorf("pushing to cached fetched NARs from the upstream: %v", got[nars:])
	}
	for _, p := range pusher.Closure(mine) {
		if code, body := down.get("/"+filepath.Base(p)[:32]+".narinfo", ""); code != 200 || !strings.Contains(body, "URL: nar/") {
			t.Errorf("pushed %s: %d\n%s", p, code, body)
		}
	}

	up.Stop()
	deleteLocally(t, builder, closure)
	substitute(t, nix, down.URL, down.Pub, top, want)
	down.verify(t, blobBackend{name: "disk"})
}

// TestPullThroughBadNAR corrupts a NAR in the static upstream: the
// narinfo verifies, the NAR does not (FileHash), so the client's transfer
// fails, and nothing of it is stored or published.
func TestPullThroughBadNAR(t *testing.T) {
	nix := nixtest.Host(t)
	dir := t.TempDir()
	sk, pk := filepath.Join(dir, "sk"), filepath.Join(dir, "pk")
	cachedCmd(t, dir, "keygen", "static-bad-1", sk, pk)
	builder := nix.New(t)
	n := nixtest.Nonce()
	p := builder.Build(nixtest.Derivation("bad-nar-"+n, "echo "+n+" > $out"))[0]
	static := filepath.Join(dir, "static")
	builder.Run("nix", "copy", "--to", "file://"+static+"?secret-key="+sk, p)
	deleteLocally(t, builder, []string{p})
	nars, err := filepath.Glob(filepath.Join(static, "nar", "*"))
	if err != nil || len(nars) != 1 {
		t.Fatalf("NAR files in the static cache: %v %v", nars, err)
	}
	b, err := os.ReadFile(nars[0])
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x55
	if err := os.WriteFile(nars[0], b, 0o644); err != nil {
		t.Fatal(err)
	}
	up := nginxtest.Start(t, static, nginxtest.Options{})
	down := startCache(t, blobBackend{name: "disk"}, "--upstream", up.URL, "--upstream-key", readFile(t, pk))
	// One attempt: Nix retries a failed download with a backoff.
	c := nix.New(t, "substituters = "+down.URL, "trusted-public-keys = "+down.Pub, "download-attempts = 1")
	if _, stderr, err := c.Try("nix-store", "-r", p); err == nil {
		t.Fatalf("substituted a path whose upstream NAR is corrupt:\n%s", stderr)
	}
	if !strings.Contains(down.Stderr.String(), "mirror: a NAR from an upstream was refused") {
		t.Errorf("no log line for the refused NAR:\n%s", down.Stderr)
	}
	if ents, _ := os.ReadDir(filepath.Join(down.Data, "blobs", "nar")); len(ents) != 0 {
		t.Errorf("the corrupt NAR left %d directories in the store", len(ents))
	}
	out := cachedCmd(t, down.Dir, "verify", "--data-dir", down.Data)
	if !strings.Contains(out, "verified 0 paths") {
		t.Errorf("something was published:\n%s", out)
	}
}

// TestPullThroughUpstreamTrouble: a path no upstream has is asked once
// and remembered (--upstream-miss-ttl); an upstream that accepts
// connections and never answers costs a request --upstream-timeout, and
// the client gets a miss (404), not a hang.
func TestPullThroughUpstreamTrouble(t *testing.T) {
	static := t.TempDir()
	if err := os.WriteFile(filepath.Join(static, "nix-cache-info"), []byte("StoreDir: /nix/store\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	up := nginxtest.Start(t, static, nginxtest.Options{})
	other := startCache(t, blobBackend{name: "disk"})
	down := startCache(t, blobBackend{name: "disk"}, "--upstream", up.URL, "--upstream-key", other.Pub)
	const missing = "/00000000000000000000000000000000.narinfo"
	for range 3 {
		if code, _ := down.get(missing, ""); code != 404 {
			t.Fatalf("a path nobody has: %d", code)
		}
	}
	if got := up.Requests(t, missing); len(got) != 1 {
		t.Errorf("nginx was asked %d times for a path it lacks, want once: %v", len(got), got)
	}

	// An upstream that never answers.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	stuck := startCache(t, blobBackend{name: "disk"}, "--upstream", "http://"+l.Addr().String(),
		"--upstream-key", other.Pub, "--upstream-timeout", "1s")
	if code, _ := stuck.get("/11111111111111111111111111111111.narinfo", ""); code != 404 {
		t.Errorf("a path asked of a silent upstream: %d, want 404", code)
	}
}
