// Package nixtest runs the real Nix client in tests: a private narinfo disk
// cache, no substituters unless asked, no build users, no sandbox. It knows
// two clients: the host's Nix 2.8 and a current Nix in a Debian sid root
// (install.go); Each runs a test with every one. A missing client skips
// the test, unless CACHED_REQUIRE_NIX=1 (set by make test), in which case
// it fails.
package nixtest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BaseConfig is the nix.conf every command gets. Extra lines are appended.
const BaseConfig = "build-users-group =\nsandbox = false\nsubstituters =\n" +
	"experimental-features = nix-command\nnarinfo-cache-negative-ttl = 0\n"

// Client is a Nix client configuration for one test.
type Client struct {
	t     testing.TB
	Nix   *Nix     // the installation that runs the commands
	Extra string   // extra nix.conf lines
	Env   []string // the client's own environment entries, built by New
	// CPUs, when positive, is how many CPUs the client sees (see
	// cpusFile); 0 leaves it the machine's.
	CPUs int
}

// New returns a client of the host's Nix with a private XDG_CACHE_HOME and
// the extra nix.conf lines given.
func New(t testing.TB, extraConf ...string) *Client {
	t.Helper()
	return Host(t).New(t, extraConf...)
}

// New returns a client of n with a private XDG_CACHE_HOME and the extra
// nix.conf lines given.
func (n *Nix) New(t testing.TB, extraConf ...string) *Client {
	t.Helper()
	c := &Client{t: t, Nix: n, Extra: strings.Join(extraConf, "\n")}
	conf := BaseConfig + c.Extra + "\n"
	c.Env = []string{
		"NIX_CONFIG=" + conf,
		"XDG_CACHE_HOME=" + t.TempDir(),
		"NIX_REMOTE=",
	}
	return c
}

// Path returns where a store path the client names is on the host.
func (c *Client) Path(storePath string) string { return c.Nix.HostPath(storePath) }

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
	online := ""
	if c.CPUs > 0 {
		var err error
		if online, err = cpusFile(c.CPUs); err != nil {
			c.t.Fatalf("%s: %v", name, err)
		}
	}
	cmd := c.Nix.command(c.Env, online, name, args...)
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
