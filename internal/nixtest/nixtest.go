// Package nixtest runs the real Nix client in tests: a private narinfo disk
// cache, no substituters unless asked, no build users, no sandbox. Tests
// that need Nix call Require first; it skips when Nix is missing, unless
// CACHED_REQUIRE_NIX=1 (set by CI), in which case it fails.
package nixtest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// BaseConfig is the nix.conf every command gets. Extra lines are appended.
const BaseConfig = "build-users-group =\nsandbox = false\nsubstituters =\n" +
	"experimental-features = nix-command\nnarinfo-cache-negative-ttl = 0\n"

// Require skips t when the Nix client is not installed or we are not root,
// or fails it when CACHED_REQUIRE_NIX=1.
func Require(t testing.TB) {
	t.Helper()
	why := ""
	if _, err := exec.LookPath("nix-build"); err != nil {
		why = "the Nix client (nix-build) is not installed; run `apt-get install -y nix-bin`"
	} else if os.Geteuid() != 0 {
		why = "the Nix tests run the single-user Nix client as root"
	}
	if why == "" {
		return
	}
	if os.Getenv("CACHED_REQUIRE_NIX") == "1" {
		t.Fatalf("CACHED_REQUIRE_NIX=1 but %s", why)
	}
	t.Skip(why)
}

// Client is a Nix client configuration for one test.
type Client struct {
	t     testing.TB
	Extra string   // extra nix.conf lines
	Env   []string // environment, built by New
}

// New returns a client with a private XDG_CACHE_HOME and the extra nix.conf
// lines given.
func New(t testing.TB, extraConf ...string) *Client {
	t.Helper()
	Require(t)
	c := &Client{t: t, Extra: strings.Join(extraConf, "\n")}
	conf := BaseConfig + c.Extra + "\n"
	c.Env = append(os.Environ(),
		"NIX_CONFIG="+conf,
		"XDG_CACHE_HOME="+t.TempDir(),
		"NIX_REMOTE=",
	)
	return c
}

// Run runs a Nix command and returns its standard output; it fails the test
// when the command fails.
func (c *Client) Run(name string, args ...string) string {
	c.t.Helper()
	out, errOut, err := c.Try(name, args...)
	if err != nil {
		c.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, errOut)
	}
	return out
}

// Try runs a Nix command and returns its standard output, standard error
// and error without failing the test.
func (c *Client) Try(name string, args ...string) (string, string, error) {
	c.t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = c.Env
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// Build writes expr to a file and builds it with nix-build, returning the
// output paths (one a line in nix-build's output).
func (c *Client) Build(expr string) []string {
	c.t.Helper()
	f := filepath.Join(c.t.TempDir(), "default.nix")
	if err := os.WriteFile(f, []byte(expr), 0o644); err != nil {
		c.t.Fatal(err)
	}
	return strings.Fields(c.Run("nix-build", "--no-out-link", f))
}

// Closure returns the closure of paths (nix-store -qR), dependencies first.
func (c *Client) Closure(paths ...string) []string {
	c.t.Helper()
	return strings.Fields(c.Run("nix-store", append([]string{"-qR"}, paths...)...))
}

// Nonce returns a random string to put in derivations so that every test
// run builds fresh store paths.
func Nonce() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b[:])
}

// Derivation returns a Nix expression for a derivation built by /bin/sh with
// the host's coreutils on PATH (the sandbox is off).
func Derivation(name, script string) string {
	return `derivation { name = "` + name + `"; system = builtins.currentSystem; builder = "/bin/sh"; ` +
		`PATH = "/usr/bin:/bin"; args = [ "-c" ''` + script + `'' ]; }`
}
