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

// hookTools are the commands the post-build hook (cached post-build-hook)
// runs: Nix's, which the nixos/nix image has on its PATH.
var hookTools = []string{"nix", "nix-store"}

// setupTools are the commands the setup script may use, besides cached.
var setupTools = []string{"dirname", "cp", "mv", "grep"}

// runSetup runs the setup script in dir, in nix's environment, with env
// and only setupTools; it returns the script's output and error.
func runSetup(t *testing.T, nix *nixtest.Nix, dir string, env ...string) (string, error) {
	t.Helper()
	cmd := command(nix, append([]string{toolPath(t, nix.Root, setupTools...)}, env...), filepath.Join(dir, "setup"))
	out, err := cmd.CombinedOutput()
	return string(out), err
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
	// The static binary, as the kit's README has it copied from the image:
	// the nixos/nix image has no libc where a dynamic one would look. It
	// is under the temporary directory, which a client in a root sees.
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
	dir := recipeDir(t, nix)
	setupEnv := []string{"CACHED_BIN=" + bin, "CACHED_URL=" + srv.URL + "/", "CACHED_TOKEN=" + token, "NIX_CONF_DIR=" + conf}

	// A key the cache does not sign with is refused, and nothing written.
	out, err := runSetup(t, nix, dir, append(setupEnv, "CACHED_PUBLIC_KEY=other-1:"+strings.Repeat("A", 43)+"=")...)
	if err == nil || !strings.Contains(out, "does not sign with the key other-1:") {
		t.Errorf("setup with a key the cache does not have: %v\n%s", err, out)
	}
	if ents, _ := os.ReadDir(conf); len(ents) != 2 {
		t.Errorf("setup wrote files before refusing: %v", ents)
	}
	// The key read from the cache, then given: the second run changes
	// nothing, never duplicates.
	if out, err := runSetup(t, nix, dir, setupEnv...); err != nil {
		t.Fatalf("setup: %v\n%s", err, out)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(conf, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	first := read("nix.conf")
	if out, err := runSetup(t, nix, dir, append(setupEnv, "CACHED_PUBLIC_KEY="+key)...); err != nil || read("nix.conf") != first {
		t.Fatalf("setup again: %v\n%s\nnix.conf was:\n%s\nis:\n%s", err, out, first, read("nix.conf"))
	}
	hook := filepath.Join(conf, "cached-post-build-hook")
	for _, want := range []string{
		"\nextra-substituters = " + srv.URL + "\n",
		"\nextra-trusted-public-keys = " + key + "\n",
		"\npost-build-hook = " + hook + "\n",
	} {
		if strings.Count(first, want) != 1 {
			t.Errorf("nix.conf lacks %q:\n%s", want, first)
		}
	}
	if n := strings.Count(first, "\n!include cached.conf\n"); n != 1 {
		t.Errorf("nix.conf includes cached.conf %d times", n)
	}
	if !strings.Contains(read("cached.conf"), "\nfallback = true\n") {
		t.Errorf("cached.conf:\n%s", read("cached.conf"))
	}
	if got := read("cached-post-build-hook"); !strings.Contains(got, bin) || !strings.Contains(got, "post-build-hook --to '"+srv.URL+"'") {
		t.Errorf("the hook script does not run %s post-build-hook for %s:\n%s", bin, srv.URL, got)
	}
	host := strings.Split(strings.TrimPrefix(srv.URL, "http://"), ":")[0]
	if got := read("netrc"); !strings.HasPrefix(got, "machine other.example password keep\n") ||
		strings.Count(got, "machine "+host+" login cached password "+token+"\n") != 1 {
		t.Errorf("netrc %q: other machines' lines not kept, or not one line for %s", got, host)
	}
	if st, err := os.Stat(filepath.Join(conf, "netrc")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("netrc mode %v (%v), want 0600", st.Mode(), err)
	}

	env := nixEnv(t, nix, conf)
	paths, log := buildPair(t, nix, env)
	if n := len(pushedLine.FindAllString(log, -1)); n != 2 {
		t.Errorf("the hook reported %d pushes, want 2:\n%s", n, log)
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

	// The cache goes down: builds go on, the hook reports and exits 0.
	srv.stop(t)
	env = nixEnv(t, nix, conf)
	_, log = buildPair(t, nix, env)
	if !strings.Contains(log, "cached post-build-hook: push to "+srv.URL+" failed; the build is not affected") {
		t.Errorf("the hook did not report the failed push:\n%s", log)
	}
}

// pushedLine is the summary of a push.
var pushedLine = regexp.MustCompile(`pushed \d+ of \d+ paths`)

// TestSetupRefuses checks setup's input validation, which cached use
// does: nothing is written.
func TestSetupRefuses(t *testing.T) {
	bin := cachedBinary(t)
	for name, env := range map[string][]string{
		"no binary":        {"CACHED_BIN=/nonexistent/cached", "CACHED_URL=http://cache.example"},
		"no scheme":        {"CACHED_URL=cache.example:8080"},
		"query":            {"CACHED_URL=http://cache.example?x=1"},
		"bad key":          {"CACHED_URL=http://cache.example", "CACHED_PUBLIC_KEY=nocolon"},
		"empty key name":   {"CACHED_URL=http://cache.example", "CACHED_PUBLIC_KEY=:abc"},
		"token with space": {"CACHED_URL=http://cache.example", "CACHED_TOKEN=a b"},
	} {
		conf := t.TempDir()
		cmd := exec.Command(filepath.Join(recipe, "setup"))
		cmd.Env = append([]string{toolPath(t, "", setupTools...), "NIX_CONF_DIR=" + conf, "CACHED_BIN=" + bin}, env...)
		if out, err := cmd.CombinedOutput(); err == nil {
			t.Errorf("%s: setup succeeded:\n%s", name, out)
		}
		if ents, _ := os.ReadDir(conf); len(ents) > 0 {
			t.Errorf("%s: setup wrote files before refusing", name)
		}
	}
}
