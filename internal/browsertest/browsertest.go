// Package browsertest loads web pages in a real headless Chromium for
// tests. Tests call Require, or DumpDOM, which calls it; they skip when
// Chromium is not installed, unless CACHED_REQUIRE_CHROMIUM=1 (set by make
// test), in which case they fail.
//
// scripts/test-deps installs Debian's chromium package.
package browsertest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/nix-cached/cached/internal/testtool"
)

// timeout bounds one page load, start-up included (about a second on an
// idle machine).
const timeout = 2 * time.Minute

// Require returns the path of the Chromium binary: $CACHED_CHROMIUM, else
// chromium (or chromium-browser) on PATH, else /usr/bin/chromium. It skips
// t when there is none, or fails it when CACHED_REQUIRE_CHROMIUM=1.
func Require(t testing.TB) string {
	t.Helper()
	return testtool.Find(t, "CHROMIUM", "Chromium is not installed: run scripts/test-deps as root "+
		"(or apt-get install chromium), or set CACHED_CHROMIUM", "chromium", "chromium-browser", "/usr/bin/chromium")
}

// Args are the flags every run gets besides --dump-dom and the user data
// directory: headless, as root, and quiet on a closed network (without the
// background-networking flags Chromium's own connections are refused, and
// its start-up waits on them). The page itself is reached directly, never
// through a proxy from the environment.
var Args = []string{
	"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
	"--no-first-run", "--disable-background-networking",
	"--disable-component-update", "--disable-sync", "--no-proxy-server",
}

// DumpDOM loads url in a fresh headless Chromium (a new profile in a
// temporary directory) and returns the DOM it rendered, serialized as
// HTML, after the page's load event. Extra flags, such as
// --virtual-time-budget=MS for pages whose scripts run late, are added to
// Args. It fails t if Chromium fails or prints nothing.
func DumpDOM(t testing.TB, url string, extra ...string) string {
	t.Helper()
	dom := run(t, url, append(append([]string{}, extra...), "--dump-dom"))
	if len(bytes.TrimSpace(dom)) == 0 {
		t.Fatalf("browsertest: chromium printed no DOM for %s", url)
	}
	return string(dom)
}

// run loads url in a fresh headless Chromium (a new profile in a
// temporary directory) with Args and extra, which holds what to do with
// the page (--dump-dom, --screenshot=FILE), and returns what Chromium
// printed on standard output. It fails t if Chromium fails or times out.
func run(t testing.TB, url string, extra []string) []byte {
	t.Helper()
	bin := Require(t)
	home := t.TempDir()
	args := append(append([]string{}, Args...), extra...)
	args = append(args, "--user-data-dir="+filepath.Join(home, "profile"), url)

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	// Chromium keeps nothing in the real home directory.
	cmd.Env = append(os.Environ(), "HOME="+home,
		"XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_CACHE_HOME="+filepath.Join(home, ".cache"))
	// Files, not pipes: a helper process that keeps them open cannot hold
	// up Wait.
	stdout, stderr := createFile(t, home, "stdout"), createFile(t, home, "stderr")
	cmd.Stdout, cmd.Stderr = stdout, stderr
	setProcAttr(cmd)
	// On timeout the whole process group goes, not only the browser.
	cmd.Cancel = func() error { killGroup(cmd); return nil }
	start := time.Now()
	err := cmd.Run()
	killGroup(cmd) // helpers (zygote, renderer) that outlived the browser
	out, errs := readFile(t, stdout), readFile(t, stderr)
	if len(errs) > 16<<10 { // the start is D-Bus noise; the end says why
		errs = errs[len(errs)-16<<10:]
	}
	switch {
	case ctx.Err() != nil:
		t.Fatalf("browsertest: chromium did not finish loading %s within %v\n%s", url, timeout, errs)
	case err != nil:
		t.Fatalf("browsertest: chromium %v %s: %v\n%s", extra, url, err, errs)
	}
	t.Logf("browsertest: chromium rendered %s in %v", url, time.Since(start).Round(time.Millisecond))
	return out
}

func createFile(t testing.TB, dir, name string) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func readFile(t testing.TB, f *os.File) []byte {
	t.Helper()
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return b
}
