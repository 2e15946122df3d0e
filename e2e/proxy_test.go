package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nix-cached/cached/internal/nixtest"
)

// container is a Nix installation with a store of its own (its own store
// directory, database and nix.conf), as a build container with a /nix
// volume has: garbage-collecting it touches nothing else on the machine.
// It lives under t.TempDir(), which the client in the sid root sees at the
// same path: its store paths are where they say on the host too.
type container struct {
	t    *testing.T
	nix  *nixtest.Nix
	root string
	env  []string
}

func newContainer(t *testing.T, nix *nixtest.Nix) *container {
	t.Helper()
	root := t.TempDir()
	c := &container{t: t, nix: nix, root: root}
	conf := filepath.Join(root, "etc", "nix")
	if err := os.MkdirAll(conf, 0o755); err != nil {
		t.Fatal(err)
	}
	// What the container's image configures; the recipe's setup adds the
	// cache. `substituters =` drops cache.nixos.org (no network here).
	// Misses are remembered for Nix's default hour, as in a real one.
	writeFile(t, filepath.Join(conf, "nix.conf"),
		"build-users-group =\nsandbox = false\nsubstituters =\n")
	c.env = []string{
		"NIX_STORE_DIR=" + c.store(), "NIX_STATE_DIR=" + filepath.Join(root, "var", "nix"),
		"NIX_LOG_DIR=" + filepath.Join(root, "var", "log", "nix"), "NIX_CONF_DIR=" + conf,
		"NIX_REMOTE=", "XDG_CACHE_HOME=" + filepath.Join(root, "cache")}
	return c
}

func (c *container) store() string { return filepath.Join(c.root, "store") }

// runLog runs a command in the container with extra environment entries,
// returning its stdout and stderr; it fails the test if the command fails.
func (c *container) runLog(extraEnv []string, name string, args ...string) (string, string) {
	c.t.Helper()
	out, errb, err := c.try(extraEnv, name, args...)
	if err != nil {
		c.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, errb)
	}
	return out, errb
}

// try is runLog returning the command's failure instead of failing the
// test: for goroutines other than the test's, which must not call Fatal.
func (c *container) try(extraEnv []string, name string, args ...string) (string, string, error) {
	env := append(slices.Clone(c.env), extraEnv...)
	cmd := c.nix.Command(env, name, args...)
	// The host's client gets this process's environment too: none of its
	// Nix settings may reach the container. (The sid root's client gets
	// env alone; cmd.Env is then only that of unshare.)
	cmd.Env = append(slices.DeleteFunc(cmd.Env, func(kv string) bool {
		return strings.HasPrefix(kv, "NIX_") || strings.HasPrefix(kv, "XDG_CACHE_HOME=")
	}), env...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// Run runs a command in the container and returns its stdout.
func (c *container) Run(name string, args ...string) string {
	c.t.Helper()
	out, _ := c.runLog(nil, name, args...)
	return out
}

// copyRecipe copies the files of deploy/proxy-container into a temporary
// directory, which the sid root's client sees too, and returns it.
func copyRecipe(t *testing.T) string {
	t.Helper()
	const from = "../deploy/proxy-container"
	dir := t.TempDir()
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, e.Name()), b, info.Mode().Perm())
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestProxyContainer plays the proxy container: a build container whose
// Nix is configured by deploy/proxy-container/setup uses cached as its
// substituter and push target. It builds (the post-build hook pushes each
// build), garbage-collects its whole store, and builds again: every path
// comes back by substitution, nothing is rebuilt.
func TestProxyContainer(t *testing.T) {
	nixtest.Each(t, testProxyContainer)
}

func testProxyContainer(t *testing.T, nix *nixtest.Nix) {
	box := newContainer(t, nix)
	srv := startCache(t, blobBackend{name: "disk"}, "--store-dir", box.store())

	// setup (cached use --post-build-hook) installs the hook in the
	// container's NIX_CONF_DIR, where Nix runs it (with its own sh in the
	// sid root): it runs cached post-build-hook.
	box.runLog([]string{"CACHED_BIN=" + binary, "CACHED_URL=" + srv.URL, "CACHED_TOKEN=" + srv.Token, "CACHED_PUBLIC_KEY=" + srv.Pub},
		filepath.Join(copyRecipe(t), "setup"))

	f := filepath.Join(box.root, "build.nix")
	writeFile(t, f, closureExpr("container-"+nixtest.Nonce()))
	out, log := box.runLog(nil, "nix-build", "--no-out-link", f)
	top := strings.TrimSpace(out)
	closure := strings.Fields(box.Run("nix-store", "-qR", top))
	if len(closure) != 4 || !strings.HasPrefix(top, box.store()+"/") {
		t.Fatalf("built %s with closure %v", top, closure)
	}
	want := hashes(t, box, closure)
	for _, p := range closure {
		if code, _ := srv.get("/"+filepath.Base(p)[:32]+".narinfo", ""); code != 200 {
			t.Errorf("%s was not pushed by the post-build hook: %d\n%s", p, code, log)
		}
	}

	// The container's store is collected whole.
	box.Run("nix-collect-garbage")
	for _, p := range closure {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Fatalf("%s survived nix-collect-garbage", p)
		}
	}

	// Built again within the hour (Nix asked the cache for these outputs
	// before the first build, and remembers the misses): every path comes
	// back from the cache, unchanged, nothing rebuilt.
	_, log = box.runLog(nil, "nix-build", "--no-out-link", f)
	if strings.Contains(log, "building '") {
		t.Errorf("something was rebuilt:\n%s", log)
	}
	checkSubstituted(t, box, srv.URL, log, want)
	box.Run("nix-store", "--verify", "--check-contents")
}
