package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nix-cached/cached/internal/nixtest"
)

// TestEmbeddedDefaults starts `cached serve` with no flags (only the port is
// moved, through the environment, so tests can run side by side): it must
// create its data directory and signing key, print the public key and a
// push token once, and accept a push from Nix with that token.
func TestEmbeddedDefaults(t *testing.T) {
	nixtest.Each(t, testEmbeddedDefaults)
}

func testEmbeddedDefaults(t *testing.T, nix *nixtest.Nix) {
	dir := t.TempDir()
	env := []string{"CACHED_LISTEN=127.0.0.1:0"}
	srv := start(t, dir, env)
	out := srv.Stdout.String()
	pub := regexp.MustCompile(`public key: (\S+-cached-1:\S+)`).FindStringSubmatch(out)
	tok := regexp.MustCompile(`push token \(shown only this once[^)]*\): (cached_\S+)`).FindStringSubmatch(out)
	if pub == nil || tok == nil {
		t.Fatalf("first start did not print a public key and a push token:\n%s", out)
	}
	for _, f := range []string{"cached.db", "signing-key", "signing-key.pub", "blobs"} {
		if _, err := os.Stat(filepath.Join(dir, "cached-data", f)); err != nil {
			t.Errorf("data directory: %v", err)
		}
	}
	if got := readFile(t, filepath.Join(dir, "cached-data", "signing-key.pub")); got != pub[1] {
		t.Errorf("signing-key.pub holds %q, printed %q", got, pub[1])
	}

	builder := nix.New(t)
	nonce := nixtest.Nonce()
	top := builder.Build(nixtest.Derivation("defaults-"+nonce, `echo `+nonce+` > $out`))[0]
	want := hashes(t, builder, []string{top})
	nix.New(t, "netrc-file = "+netrc(t, tok[1])).Run("nix", "copy", "--to", srv.URL, top)

	// Restart: same key, and the token is not printed again.
	srv.stop()
	srv = start(t, dir, env)
	if !strings.Contains(srv.Stdout.String(), "public key: "+pub[1]) {
		t.Errorf("after a restart the public key changed:\n%s", srv.Stdout)
	}
	if strings.Contains(srv.Stdout.String(), "push token") {
		t.Errorf("the push token was printed again:\n%s", srv.Stdout)
	}
	deleteLocally(t, builder, []string{top})
	substitute(t, nix, srv.URL, pub[1], top, want)

	// Tokens made with `cached token create` work while the server runs,
	// and stop working when removed.
	secret := strings.TrimSpace(cachedCmd(t, dir, "token", "create", "--name", "ci"))
	if code, _ := srv.do("PUT", "/nix-cache-info", secret, []byte("StoreDir: /nix/store\n")); code != 204 {
		t.Fatalf("PUT with a created token: %d", code)
	}
	if ls := cachedCmd(t, dir, "token", "ls"); !strings.Contains(ls, "ci\tpush") || strings.Contains(ls, secret) {
		t.Errorf("token ls:\n%s", ls)
	}
	cachedCmd(t, dir, "token", "rm", "ci")
	if code, _ := srv.do("PUT", "/nix-cache-info", secret, nil); code != 401 {
		t.Fatalf("PUT with a removed token: %d", code)
	}
}

// TestConfigPrecedence checks defaults < config file < environment < flags.
func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "cached.conf")
	writeFile(t, conf, "# settings\nlisten = 127.0.0.1:0\ndata-dir = "+filepath.Join(dir, "d")+"\npriority = 12\n")
	priority := func(p *proc) string {
		_, body := p.get("/nix-cache-info", "")
		return regexp.MustCompile(`Priority: (\d+)`).FindStringSubmatch(body)[1]
	}
	cases := []struct {
		env  []string
		args []string
		want string
	}{
		{nil, []string{"--listen", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "d")}, "30"},
		{[]string{"CACHED_CONFIG=" + conf}, nil, "12"},
		{nil, []string{"--config", conf}, "12"},
		{[]string{"CACHED_CONFIG=" + conf, "CACHED_PRIORITY=13"}, nil, "13"},
		{[]string{"CACHED_PRIORITY=13"}, []string{"--config", conf, "--priority", "14"}, "14"},
	}
	for i, c := range cases {
		srv := start(t, dir, c.env, c.args...)
		if got := priority(srv); got != c.want {
			t.Errorf("case %d: Priority %s, want %s", i, got, c.want)
		}
		srv.stop()
	}
}

// TestTraversal sends raw requests that try to leave the data directory.
func TestTraversal(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	writeFile(t, secret, "do-not-serve")
	srv := start(t, dir, nil, "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"))
	host := strings.TrimPrefix(srv.URL, "http://")
	for _, path := range []string{
		"/nar/../../etc/passwd",
		"/nar/..%2F..%2F..%2Fetc%2Fpasswd",
		"/nar/%2e%2e/%2e%2e/secret",
		"/log/..%2Fsecret",
		"/../secret",
		"/realisations/..%2F..%2Fsecret",
		"/debuginfo/../../secret",
		"/nar/" + strings.Repeat("0", 52) + ".nar/../../../secret",
	} {
		for _, method := range []string{"GET", "PUT"} {
			status, body := raw(t, host, method, path)
			if status < 400 || status >= 500 || strings.Contains(body, "root:") || strings.Contains(body, "do-not-serve") {
				t.Errorf("%s %s: %d %q", method, path, status, body)
			}
		}
	}
}

// raw sends a request exactly as written, with no client-side cleaning.
func raw(t *testing.T, host, method, path string) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", method, path, host)
	r := bufio.NewReader(conn)
	var proto string
	var status int
	if _, err := fmt.Fscan(r, &proto, &status); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	rest, _ := r.ReadString(0)
	return status, rest
}
