package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nix-cached/cached/internal/nixtest"
)

// container is a Nix installation with a store of its own (its own store
// directory, database and nix.conf), as a build container with a /nix
// volume has: garbage-collecting it touches nothing else on the machine.
type container struct {
	t    *testing.T
	root string
	env  []string
}

func newContainer(t *testing.T) *container {
	t.Helper()
	nixtest.Require(t)
	root := t.TempDir()
	c := &container{t: t, root: root}
	conf := filepath.Join(root, "etc", "nix")
	if err := os.MkdirAll(conf, 0o755); err != nil {
		t.Fatal(err)
	}
	// What the container's image configures; the recipe's setup adds the
	// cache. `substituters =` drops cache.nixos.org (no network here).
	writeFile(t, filepath.Join(conf, "nix.conf"),
		"build-users-group =\nsandbox = false\nsubstituters =\nnarinfo-cache-negative-ttl = 0\n")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NIX_") && !strings.HasPrefix(kv, "XDG_CACHE_HOME=") {
			c.env = append(c.env, kv)
		}
	}
	c.env = append(c.env,
		"NIX_STORE_DIR="+c.store(), "NIX_STATE_DIR="+filepath.Join(root, "var", "nix"),
		"NIX_LOG_DIR="+filepath.Join(root, "var", "log", "nix"), "NIX_CONF_DIR="+conf,
		"NIX_REMOTE=", "XDG_CACHE_HOME="+filepath.Join(root, "cache"))
	return c
}

func (c *container) store() string { return filepath.Join(c.root, "store") }

// run runs a command in the container, returning stdout and stderr.
func (c *container) run(name string, args ...string) (string, string) {
	c.t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = c.env
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		c.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, errb.String())
	}
	return out.String(), errb.String()
}

// TestProxyContainer plays the proxy container: a build container whose
// Nix is configured by deploy/proxy-container/setup uses cached as its
// substituter and push target. It builds (the post-build hook pushes each
// build), garbage-collects its whole store, and gets every path back by
// substitution with nothing rebuilt.
func TestProxyContainer(t *testing.T) {
	box := newContainer(t)
	srv := startCache(t, blobBackend{name: "disk"}, "--store-dir", box.store())

	setup := exec.Command("../deploy/proxy-container/setup")
	setup.Env = append(box.env, "CACHED_URL="+srv.URL, "CACHED_TOKEN="+srv.Token, "CACHED_PUBLIC_KEY="+srv.Pub)
	if out, err := setup.CombinedOutput(); err != nil {
		t.Fatalf("setup: %v\n%s", err, out)
	}

	f := filepath.Join(box.root, "build.nix")
	writeFile(t, f, closureExpr("container-"+nixtest.Nonce()))
	out, log := box.run("nix-build", "--no-out-link", f)
	top := strings.TrimSpace(out)
	closureOut, _ := box.run("nix-store", "-qR", top)
	closure := strings.Fields(closureOut)
	if len(closure) != 4 || !strings.HasPrefix(top, box.store()+"/") {
		t.Fatalf("built %s with closure %v", top, closure)
	}
	want := map[string]string{}
	for _, p := range closure {
		h, _ := box.run("nix-store", "-q", "--hash", p)
		want[p] = strings.TrimSpace(h)
		if code, _ := srv.get("/"+filepath.Base(p)[:32]+".narinfo", ""); code != 200 {
			t.Errorf("%s was not pushed by the post-build hook: %d\n%s", p, code, log)
		}
	}

	// The container's store is collected whole.
	box.run("nix-collect-garbage")
	for _, p := range closure {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Fatalf("%s survived nix-collect-garbage", p)
		}
	}

	// Every path comes back from the cache, unchanged, nothing rebuilt.
	_, log = box.run("nix-store", "--realise", top)
	if strings.Contains(log, "building '") {
		t.Errorf("something was rebuilt:\n%s", log)
	}
	for p, h := range want {
		if !strings.Contains(log, "copying path '"+p+"' from '"+srv.URL) {
			t.Errorf("%s was not substituted from the cache:\n%s", p, log)
		}
		if got, _ := box.run("nix-store", "-q", "--hash", p); strings.TrimSpace(got) != h {
			t.Errorf("%s: hash %s after substitution, %s before", p, strings.TrimSpace(got), h)
		}
	}
	box.run("nix-store", "--verify", "--check-contents")
}
