package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/nix-cached/cached/internal/nixtest"
)

// TestKeyRollover rolls the cache's signing key over as the procedure
// says, with the real Nix client: a closure pushed under key A; the server
// restarted with A and B re-signs it, and a client trusting only B
// substitutes it; restarted with only B and A retired, every narinfo
// carries B's signature and none of A's, a client trusting only A can no
// longer substitute, and one trusting B can. The client's own signature
// stays throughout.
func TestKeyRollover(t *testing.T) {
	nixtest.Each(t, testKeyRollover)
}

func testKeyRollover(t *testing.T, nix *nixtest.Nix) {
	builder := nix.New(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	nameA, nameB := "e2e-rollover-a-1", "e2e-rollover-b-1"
	skA, skB := filepath.Join(dir, "a.sk"), filepath.Join(dir, "b.sk")
	cachedCmd(t, dir, "keygen", nameA, skA, skA+".pub")
	cachedCmd(t, dir, "keygen", nameB, skB, skB+".pub")
	pubA, pubB := readFile(t, skA+".pub"), readFile(t, skB+".pub")
	token := "e2e-push-" + nixtest.Nonce()
	tokens := filepath.Join(dir, "tokens")
	writeFile(t, tokens, token+"\n")
	serve := func(extra ...string) *proc {
		t.Helper()
		return start(t, dir, nil, append([]string{"--listen", "127.0.0.1:0", "--data-dir", data,
			"--push-token-file", tokens}, extra...)...)
	}

	srv := serve("--signing-key-file", skA)
	top := builder.Build(closureExpr("rollover-" + nixtest.Nonce()))[0]
	closure := builder.Closure(top)
	want := hashes(t, builder, closure)
	csk := filepath.Join(dir, "client.sk")
	builder.Run("nix-store", "--generate-binary-cache-key", "e2e-client-1", csk, csk+".pub")
	nix.New(t, "netrc-file = "+netrc(t, token)).Run("nix", "copy", "--to", srv.URL+"?secret-key="+csk, top)
	checkSignedBy(t, srv, closure, "e2e-client-1 "+nameA)
	srv.stop()

	// 1. Both keys: B's signature is added to every path.
	srv = serve("--signing-key-file", skA, "--signing-key-file", skB)
	waitResigned(t, srv)
	if code, body := srv.get("/public-key", ""); code != 200 || !sameSet(strings.Fields(body), []string{pubA, pubB}) {
		t.Errorf("/public-key with both keys: %d %q", code, body)
	}
	checkSignedBy(t, srv, closure, "e2e-client-1 "+nameA+" "+nameB)
	checkKeysStatus(t, dir, data, "keys:     "+nameA+" "+nameB, "retired:  none")

	// 2. A client trusting only B substitutes the closure.
	deleteLocally(t, builder, closure)
	substitute(t, nix, srv.URL, pubB, top, want)
	srv.stop()

	// 3. B only, A retired: A's signatures are removed.
	srv = serve("--signing-key-file", skB, "--retired-key", nameA)
	waitResigned(t, srv)
	if code, body := srv.get("/public-key", ""); code != 200 || strings.TrimSpace(body) != pubB {
		t.Errorf("/public-key after the rollover: %d %q, want only %q", code, body, pubB)
	}
	checkSignedBy(t, srv, closure, "e2e-client-1 "+nameB)
	checkKeysStatus(t, dir, data, "keys:     "+nameB, "retired:  "+nameA)

	deleteLocally(t, builder, closure)
	onlyA := nix.New(t, "substituters = "+srv.URL, "trusted-public-keys = "+pubA)
	if _, stderr, err := onlyA.Try("nix-store", "-r", top); err == nil || !strings.Contains(stderr, "not signed by any of the keys") {
		t.Fatalf("a client trusting only the retired key: %v, want a refusal of the signatures:\n%s", err, stderr)
	}
	if _, err := os.Lstat(onlyA.Path(top)); !os.IsNotExist(err) {
		t.Fatalf("%s appeared although only the retired key is trusted", top)
	}
	substitute(t, nix, srv.URL, pubB, top, want)
	srv.stop()

	// A restart with the same keys starts no pass.
	srv = serve("--signing-key-file", skB, "--retired-key", nameA)
	waitResigned(t, srv)
	if strings.Contains(srv.Stderr.String(), "a pass starts") {
		t.Errorf("a restart with unchanged keys began a pass:\n%s", srv.Stderr)
	}
	if _, met := srv.get("/metrics", ""); !strings.Contains(met, "\ncached_resign_rewritten_total 0\n") {
		t.Errorf("a restart with unchanged keys rewrote narinfos:\n%s", grepLines(met, "cached_resign"))
	}
}

// waitResigned waits until the server reports that every narinfo was
// checked against its keys.
func waitResigned(t *testing.T, srv *proc) {
	t.Helper()
	waitFor(t, func() bool {
		_, met := srv.get("/metrics", "")
		return strings.Contains(met, "\ncached_resign_complete 1\n")
	})
}

var sigLine = regexp.MustCompile(`(?m)^Sig: ([^:\s]+):`)

// checkSignedBy fails the test unless the narinfo the server serves for
// each path carries signatures by exactly the key names of want
// (space-separated, sorted).
func checkSignedBy(t *testing.T, srv *proc, paths []string, want string) {
	t.Helper()
	for _, p := range paths {
		code, ni := srv.get("/"+filepath.Base(p)[:32]+".narinfo", "")
		if code != 200 {
			t.Fatalf("%s.narinfo: %d", p, code)
		}
		var names []string
		for _, m := range sigLine.FindAllStringSubmatch(ni, -1) {
			names = append(names, m[1])
		}
		slices.Sort(names)
		if got := strings.Join(names, " "); got != want {
			t.Errorf("narinfo of %s is signed by %q, want %q:\n%s", p, got, want, ni)
		}
	}
}

// checkKeysStatus checks what `cached keys status` says.
func checkKeysStatus(t *testing.T, dir, data string, want ...string) {
	t.Helper()
	out, err := cachedTry(t, dir, "keys", "status", "--data-dir", data)
	for _, w := range append(want, "complete: ") {
		if err != nil || !strings.Contains(out, w) {
			t.Errorf("cached keys status: %v; lacks %q:\n%s", err, w, out)
		}
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
