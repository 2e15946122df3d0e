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

// toolPath returns a PATH of only the named commands (those installed), as
// lean as the nixos/nix image, which has no sed or awk.
func toolPath(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			if err := os.Symlink(p, filepath.Join(dir, n)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return "PATH=" + dir
}

// setupTools are the commands the setup script may use.
var setupTools = []string{"dirname", "mkdir", "mv", "chmod", "touch", "grep", "curl", "wget"}

// runSetup runs the recipe's setup script with env and only setupTools.
func runSetup(t *testing.T, env ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(recipe, "setup"))
	cmd.Env = append([]string{toolPath(t, setupTools...)}, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("setup: %v\n%s", err, out)
	}
	return string(out)
}

// nixEnv is the environment of a Nix client configured only by confDir:
// the nixtest client's, minus its NIX_CONFIG (whose `substituters =`
// would drop the fragment's extra-substituters).
func nixEnv(t *testing.T, confDir string) []string {
	var env []string
	for _, e := range nixtest.New(t).Env {
		if !strings.HasPrefix(e, "NIX_CONFIG=") && !strings.HasPrefix(e, "XDG_CACHE_HOME=") && !strings.HasPrefix(e, "PATH=") {
			env = append(env, e)
		}
	}
	// A fresh narinfo disk cache, as in a new container; the hook gets
	// Nix's PATH, with nothing but Nix and coreutils' timeout.
	return append(env, "NIX_CONF_DIR="+confDir, "XDG_CACHE_HOME="+t.TempDir(), toolPath(t, "nix", "nix-store", "timeout"))
}

// nix runs a Nix command and returns its standard output and error.
func nix(t *testing.T, env []string, name string, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr strings.Builder
	cmd := exec.Command(name, args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// buildPair builds a derivation that depends on another and returns both
// outputs, the dependency first, and nix-build's standard error.
func buildPair(t *testing.T, env []string) ([]string, string) {
	t.Helper()
	n := nixtest.Nonce()
	expr := "let dep = " + nixtest.Derivation("proxy-dep-"+n, "echo dep > $out") + "; in " +
		nixtest.Derivation("proxy-top-"+n, "echo ${dep} > $out")
	f := filepath.Join(t.TempDir(), "default.nix")
	if err := os.WriteFile(f, []byte(expr), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := nix(t, env, "nix-build", "--no-out-link", f)
	if err != nil {
		t.Fatalf("nix-build: %v\n%s", err, stderr)
	}
	top := strings.TrimSpace(out)
	refs, _, err := nix(t, env, "nix-store", "-q", "--references", top)
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
// that is down fails no build.
func TestProxyContainer(t *testing.T) {
	nixtest.Require(t)
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
	_, errCurl := exec.LookPath("curl")
	_, errWget := exec.LookPath("wget")
	if errCurl != nil && errWget != nil {
		setupEnv = append(setupEnv, "CACHED_PUBLIC_KEY="+key) // nothing to fetch it with
	}
	runSetup(t, setupEnv...)
	runSetup(t, setupEnv...) // again: it updates, never duplicates

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

	env := nixEnv(t, conf)
	paths, log := buildPair(t, env)
	if strings.Count(log, "cached-post-build-hook: pushed") != 2 {
		t.Errorf("the hook did not report two pushes:\n%s", log)
	}
	for _, p := range paths {
		srv.get(t, narinfo(p), http.StatusOK)
	}

	// The container collects its store: the paths come back from the cache.
	if _, stderr, err := nix(t, env, "nix-store", "--delete", paths[1], paths[0]); err != nil {
		t.Fatalf("nix-store --delete: %v\n%s", err, stderr)
	}
	env = nixEnv(t, conf)
	if _, stderr, err := nix(t, env, "nix-store", "--realise", paths[1]); err != nil || !strings.Contains(stderr, "from '"+srv.URL+"'") {
		t.Fatalf("substituting %s: %v\n%s", paths[1], err, stderr)
	}

	// The cache goes down: builds go on, the hook logs and exits 0.
	srv.stop(t)
	env = nixEnv(t, conf)
	_, log = buildPair(t, env)
	if !strings.Contains(log, "cached-post-build-hook: push to "+srv.URL+" failed") || !strings.Contains(log, "the build is not affected") {
		t.Errorf("the hook did not report the failed push:\n%s", log)
	}
}

// TestHookNothingToPush runs the hook outside Nix: with no paths it says
// so and succeeds.
func TestHookNothingToPush(t *testing.T) {
	cmd := exec.Command(filepath.Join(recipe, "post-build-hook"))
	cmd.Env = []string{toolPath(t, "nix", "nix-store", "timeout"), "OUT_PATHS=", "CACHED_URL=http://127.0.0.1:9"}
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
		cmd.Env = append([]string{toolPath(t, setupTools...), "NIX_CONF_DIR=" + conf}, env...)
		if out, err := cmd.CombinedOutput(); err == nil {
			t.Errorf("%s: setup succeeded:\n%s", name, out)
		}
		if ents, _ := os.ReadDir(conf); len(ents) > 0 {
			t.Errorf("%s: setup wrote files before refusing", name)
		}
	}
}
