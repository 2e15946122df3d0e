package deploy

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nix-cached/cached/internal/nixtest"
)

// recipe is deploy/proxy-container.
const recipe = "proxy-container"

var (
	tokenLine     = regexp.MustCompile(`push token \(shown only this once[^)]*\): (\S+)`)
	publicKeyLine = regexp.MustCompile(`public key: (\S+)`)
)

// lookTool finds the named command in the file system rooted at root (""
// for the host's): on the host's PATH, or in the root's /usr/bin or /bin.
// It returns the command's path as seen from inside that root.
func lookTool(root, name string) (string, bool) {
	if root == "" {
		p, err := exec.LookPath(name)
		return p, err == nil
	}
	for _, dir := range []string{"/usr/bin", "/bin"} {
		p := filepath.Join(dir, name)
		if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
			return p, true
		}
	}
	return "", false
}

// toolPath returns a PATH of only the named commands (those installed in
// the file system rooted at root, "" for the host's), as lean as the
// nixos/nix image, which has no sed or awk. Its directory is under the
// temporary directory, which a Nix client in a root sees at the same path.
func toolPath(t *testing.T, root string, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		if p, ok := lookTool(root, n); ok {
			if err := os.Symlink(p, filepath.Join(dir, n)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return "PATH=" + dir
}

// command returns name (looked up in nix's environment unless it is a
// path) run with exactly the environment env; inside a root, with HOME and
// a default PATH before env, which env's PATH overrides.
func command(nix *nixtest.Nix, env []string, name string, args ...string) *exec.Cmd {
	if !strings.Contains(name, "/") {
		if p, ok := lookTool(nix.Root, name); ok {
			name = p
		}
	}
	if nix.Root != "" {
		return nix.Command(env, name, args...)
	}
	cmd := exec.Command(name, args...)
	cmd.Env = env
	return cmd
}

// recipeDir returns the recipe's directory as nix's environment sees it:
// the repository's for the host's client, a copy in the temporary
// directory for a client in a root, which sees no repository files.
func recipeDir(t *testing.T, nix *nixtest.Nix) string {
	t.Helper()
	if nix.Root == "" {
		return recipe
	}
	dir := t.TempDir()
	ents, err := os.ReadDir(recipe)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if _, err := copyFile(filepath.Join(recipe, e.Name()), filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// hookTools are the commands the post-build hook uses: Nix and the
// coreutils that the nixos/nix image has.
var hookTools = []string{"nix", "nix-store", "timeout", "mktemp", "mkdir", "rm"}

// setupTools are the commands the setup script may use.
var setupTools = []string{"dirname", "mkdir", "mv", "chmod", "touch", "grep", "curl", "wget"}

// runSetup runs the setup script in dir, in nix's environment, with env
// and only setupTools.
func runSetup(t *testing.T, nix *nixtest.Nix, dir string, env ...string) string {
	t.Helper()
	cmd := command(nix, append([]string{toolPath(t, nix.Root, setupTools...)}, env...), filepath.Join(dir, "setup"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("setup: %v\n%s", err, out)
	}
	return string(out)
}

// nixEnv is the environment of a Nix client configured only by confDir:
// the nixtest client's, minus its NIX_CONFIG (whose `substituters =`
// would drop the fragment's extra-substituters).
func nixEnv(t *testing.T, nix *nixtest.Nix, confDir string) []string {
	var env []string
	for _, e := range nix.New(t).Env {
		if !strings.HasPrefix(e, "NIX_CONFIG=") && !strings.HasPrefix(e, "XDG_CACHE_HOME=") && !strings.HasPrefix(e, "PATH=") {
			env = append(env, e)
		}
	}
	// A fresh narinfo disk cache, as in a new container; the hook gets
	// Nix's PATH, with nothing but Nix and the coreutils it uses.
	return append(env, "NIX_CONF_DIR="+confDir, "XDG_CACHE_HOME="+t.TempDir(), toolPath(t, nix.Root, hookTools...))
}

// nixRun runs a Nix command in nix's environment with env and returns its
// standard output and error.
func nixRun(t *testing.T, nix *nixtest.Nix, env []string, name string, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr strings.Builder
	cmd := command(nix, env, name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// buildPair builds a derivation that depends on another and returns both
// outputs, the dependency first, and nix-build's standard error.
func buildPair(t *testing.T, nix *nixtest.Nix, env []string) ([]string, string) {
	t.Helper()
	n := nixtest.Nonce()
	expr := "let dep = " + nixtest.Derivation("proxy-dep-"+n, "echo dep > $out") + "; in " +
		nixtest.Derivation("proxy-top-"+n, "echo ${dep} > $out")
	f := filepath.Join(t.TempDir(), "default.nix")
	if err := os.WriteFile(f, []byte(expr), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := nixRun(t, nix, env, "nix-build", "--no-out-link", f)
	if err != nil {
		t.Fatalf("nix-build: %v\n%s", err, stderr)
	}
	top := strings.TrimSpace(out)
	refs, _, err := nixRun(t, nix, env, "nix-store", "-q", "--references", top)
	if err != nil || len(strings.Fields(refs)) != 1 {
		t.Fatalf("references of %s: %q %v", top, refs, err)
	}
	return []string{strings.TrimSpace(refs), top}, stderr
}

func narinfo(p string) string {
	return "/" + filepath.Base(p)[:32] + ".narinfo"
}

// TestProxyContainer plays a build container with the recipe's files and
// the real Nix client: setup configures it, every build is pushed with its
// closure, paths deleted locally come back by substitution, and a cache
// that is down fails no build. It runs with every installed Nix client;
// the nixos/nix image has a current one.
func TestProxyContainer(t *testing.T) { nixtest.Each(t, testProxyContainer) }

// testProxyContainer is TestProxyContainer with one Nix client.
func testProxyContainer(t *testing.T, nix *nixtest.Nix) {
	bin := cachedBinary(t)
	srv := startServe(t, bin, t.TempDir(), []string{"PATH=" + os.Getenv("PATH")},
		"--listen", "127.0.0.1:0", "--data-dir", filepath.Join(t.TempDir(), "data"))
	m := tokenLine.FindStringSubmatch(srv.Stdout.String())
	k := publicKeyLine.FindStringSubmatch(srv.Stdout.String())
	if m == nil || k == nil {
		t.Fatalf("no push token or public key in:\n%s", srv.Stdout)
	}
	token, key := m[1], k[1]

	conf := t.TempDir()
	base := "build-users-group =\nsandbox = false\nsubstituters =\nexperimental-features = nix-command\n"
	if err := os.WriteFile(filepath.Join(conf, "nix.conf"), []byte(base), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(conf, "netrc"), []byte("machine other.example password keep\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	setupEnv := []string{"CACHED_URL=" + srv.URL + "/", "CACHED_TOKEN=" + token, "NIX_CONF_DIR=" + conf}
	_, curl := lookTool(nix.Root, "curl")
	_, wget := lookTool(nix.Root, "wget")
	if !curl && !wget {
		setupEnv = append(setupEnv, "CACHED_PUBLIC_KEY="+key) // nothing to fetch it with
	}
	dir := recipeDir(t, nix)
	runSetup(t, nix, dir, setupEnv...)
	runSetup(t, nix, dir, setupEnv...) // again: it updates, never duplicates

	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(conf, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	frag := read("cached.conf")
	for _, want := range []string{
		"\nextra-substituters = " + srv.URL + "\n",
		"\nextra-trusted-public-keys = " + key + "\n",
		"\nnetrc-file = " + filepath.Join(conf, "netrc") + "\n",
		"\npost-build-hook = " + filepath.Join(conf, "cached-post-build-hook") + "\n",
	} {
		if !strings.Contains(frag, want) {
			t.Errorf("cached.conf lacks %q:\n%s", want, frag)
		}
	}
	if strings.Contains(frag, "${") {
		t.Errorf("cached.conf keeps a placeholder:\n%s", frag)
	}
	host := strings.Split(strings.TrimPrefix(srv.URL, "http://"), ":")[0]
	if got, want := read("netrc"), "machine other.example password keep\nmachine "+host+" password "+token+"\n"; got != want {
		t.Errorf("netrc %q, want %q", got, want)
	}
	if st, err := os.Stat(filepath.Join(conf, "netrc")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("netrc mode %v (%v), want 0600", st.Mode(), err)
	}
	if n := strings.Count(read("nix.conf"), "\n!include cached.conf\n"); n != 1 {
		t.Errorf("nix.conf includes cached.conf %d times", n)
	}

	env := nixEnv(t, nix, conf)
	paths, log := buildPair(t, nix, env)
	if strings.Count(log, "cached-post-build-hook: pushed") != 2 {
		t.Errorf("the hook did not report two pushes:\n%s", log)
	}
	for _, p := range paths {
		srv.get(t, narinfo(p), http.StatusOK)
	}

	// The container collects its store: the paths come back from the cache.
	if _, stderr, err := nixRun(t, nix, env, "nix-store", "--delete", paths[1], paths[0]); err != nil {
		t.Fatalf("nix-store --delete: %v\n%s", err, stderr)
	}
	env = nixEnv(t, nix, conf)
	if _, stderr, err := nixRun(t, nix, env, "nix-store", "--realise", paths[1]); err != nil || !strings.Contains(stderr, "from '"+srv.URL+"'") {
		t.Fatalf("substituting %s: %v\n%s", paths[1], err, stderr)
	}

	// The cache goes down: builds go on, the hook logs and exits 0.
	srv.stop(t)
	env = nixEnv(t, nix, conf)
	_, log = buildPair(t, nix, env)
	if !strings.Contains(log, "cached-post-build-hook: push to "+srv.URL+" failed") || !strings.Contains(log, "the build is not affected") {
		t.Errorf("the hook did not report the failed push:\n%s", log)
	}
}

// TestHookNothingToPush runs the hook outside Nix: with no paths it says
// so and succeeds.
func TestHookNothingToPush(t *testing.T) {
	cmd := exec.Command(filepath.Join(recipe, "post-build-hook"))
	cmd.Env = []string{toolPath(t, "", hookTools...), "OUT_PATHS=", "CACHED_URL=http://127.0.0.1:9"}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "nothing to push") {
		t.Errorf("hook without paths: %v\n%s", err, out)
	}
}

// TestSetupRefuses checks setup's input validation.
func TestSetupRefuses(t *testing.T) {
	for name, env := range map[string][]string{
		"no scheme":        {"CACHED_URL=cache.example:8080", "CACHED_PUBLIC_KEY=a:b"},
		"query":            {"CACHED_URL=http://cache.example?x=1", "CACHED_PUBLIC_KEY=a:b"},
		"bad key":          {"CACHED_URL=http://cache.example", "CACHED_PUBLIC_KEY=nocolon"},
		"empty key name":   {"CACHED_URL=http://cache.example", "CACHED_PUBLIC_KEY=:abc"},
		"token with space": {"CACHED_URL=http://cache.example", "CACHED_PUBLIC_KEY=a:b", "CACHED_TOKEN=a b"},
	} {
		conf := t.TempDir()
		cmd := exec.Command(filepath.Join(recipe, "setup"))
		cmd.Env = append([]string{toolPath(t, "", setupTools...), "NIX_CONF_DIR=" + conf}, env...)
		if out, err := cmd.CombinedOutput(); err == nil {
			t.Errorf("%s: setup succeeded:\n%s", name, out)
		}
		if ents, _ := os.ReadDir(conf); len(ents) > 0 {
			t.Errorf("%s: setup wrote files before refusing", name)
		}
	}
}
