package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nix-cached/cached/internal/nixtest"
)

// machine is a Nix installation configured only by its files, as a user's
// machine is: a nix.conf in its own NIX_CONF_DIR (which cached use, run
// as root, writes), and the user's narinfo cache and config directories,
// which persist from one command to the next.
type machine struct {
	*nixtest.Client
	dir  string
	conf string // the system nix.conf
}

func newMachine(t *testing.T, nix *nixtest.Nix) *machine {
	t.Helper()
	dir := t.TempDir()
	m := &machine{Client: nix.New(t), dir: dir, conf: filepath.Join(dir, "etc", "nix", "nix.conf")}
	if err := os.MkdirAll(filepath.Dir(m.conf), 0o755); err != nil {
		t.Fatal(err)
	}
	// No cache.nixos.org (there is no network here); what the machine's
	// image would configure. Misses are remembered for Nix's default hour.
	writeFile(t, m.conf, "build-users-group =\nsandbox = false\nsubstituters =\nexperimental-features = nix-command\n")
	m.Env = []string{"NIX_CONF_DIR=" + filepath.Dir(m.conf), "XDG_CACHE_HOME=" + filepath.Join(dir, "cache"),
		"XDG_CONFIG_HOME=" + filepath.Join(dir, "config"), "NIX_REMOTE="}
	return m
}

// cached runs a cached client command on the machine.
func (m *machine) cached(args ...string) string {
	return m.Run(binary, args...)
}

// TestUsePushSubstitute is the round trip on one machine: cached use,
// build (Nix asks the cache first and remembers the misses), cached push,
// delete the closure, build again: every path is substituted from the
// cache, signature checked, nothing rebuilt, with the user's own narinfo
// cache throughout.
func TestUsePushSubstitute(t *testing.T) {
	nixtest.Each(t, func(t *testing.T, nix *nixtest.Nix) {
		srv := startCache(t, blobBackend{name: "disk"})
		m := newMachine(t, nix)
		before := readFile(t, m.conf)
		if dry := m.cached("use", srv.URL, "--token", srv.Token, "--dry-run"); !strings.Contains(dry, "would add extra-substituters = "+srv.URL) ||
			readFile(t, m.conf) != before {
			t.Errorf("cached use --dry-run said %q and left nix.conf:\n%s", dry, readFile(t, m.conf))
		}
		out := m.cached("use", srv.URL, "--token", srv.Token)
		conf := readFile(t, m.conf)
		for _, want := range []string{"extra-substituters = " + srv.URL + "\n", "extra-trusted-public-keys = " + srv.Pub + "\n", "substituters =\n"} {
			if !strings.Contains(conf, want) {
				t.Errorf("nix.conf after cached use lacks %q:\n%s\n(cached use said: %s)", want, conf, out)
			}
		}
		if again := m.cached("use", srv.URL, "--token", srv.Token); readFile(t, m.conf) != conf || !strings.Contains(again, "already uses") {
			t.Errorf("cached use again changed nix.conf:\n%s\n%s", readFile(t, m.conf), again)
		}
		netrc := filepath.Join(filepath.Dir(m.conf), "netrc")
		if info, err := os.Stat(netrc); err != nil || info.Mode().Perm() != 0o600 || !strings.Contains(readFile(t, netrc), srv.Token) {
			t.Fatalf("netrc after cached use: %v %v", info, err)
		}

		expr := filepath.Join(t.TempDir(), "default.nix")
		writeFile(t, expr, closureExpr(nixtest.Nonce()))
		top := strings.TrimSpace(m.Run("nix-build", "--no-out-link", expr))
		closure := m.Closure(top)
		want := hashes(t, m, closure)
		pushed := m.cached("push", "--pin", "release", top)
		if !strings.Contains(pushed, "pushed 4 of 4 paths") || !strings.Contains(pushed, "pinned "+top+" as release") {
			t.Errorf("cached push said:\n%s", pushed)
		}
		if pins := cachedCmd(t, srv.Dir, "pin", "ls", "--data-dir", srv.Data); !strings.Contains(pins, "release") || !strings.Contains(pins, filepath.Base(top)) {
			t.Errorf("cached pin ls after push --pin:\n%s", pins)
		}
		// Pushing again, the paths on standard input, copies nothing.
		cmd := m.Nix.Command(m.Env, binary, "push", "--stdin")
		cmd.Stdin = strings.NewReader(strings.Join(closure, "\n") + "\n")
		if again, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(again), "pushed 0 of 4 paths") {
			t.Errorf("cached push --stdin of what the cache holds: %v\n%s", err, again)
		}
		deleteLocally(t, m.Client, closure)
		_, log, err := m.Try("nix-build", "--no-out-link", expr)
		if err != nil {
			t.Fatalf("building again after the push: %v\n%s", err, log)
		}
		if strings.Contains(log, "building '") {
			t.Errorf("something was rebuilt instead of substituted:\n%s", log)
		}
		checkSubstituted(t, m, srv.URL, log, want)
	})
}

// TestUsePostBuildHook checks what cached use --post-build-hook writes
// beside the settings (the end-to-end pushes are deploy's and
// TestProxyContainer's): nothing under --dry-run, and nothing at all when
// nix.conf already runs another hook, which Nix would drop.
func TestUsePostBuildHook(t *testing.T) {
	srv := startCache(t, blobBackend{name: "disk"})
	dir := t.TempDir()
	conf := filepath.Join(dir, "nix.conf")
	hook := filepath.Join(dir, "cached-post-build-hook")
	use := func(extra ...string) (string, error) {
		cmd := exec.Command(binary, append([]string{"use", "--post-build-hook", "--nix-conf", conf}, append(extra, srv.URL)...)...)
		cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+dir)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := use("--dry-run"); err != nil || !strings.Contains(out, "would set post-build-hook = "+hook) ||
		!strings.Contains(out, hook+": would write a post-build-hook") {
		t.Errorf("--dry-run: %v\n%s", err, out)
	}
	if _, err := os.Stat(hook); !os.IsNotExist(err) {
		t.Errorf("--dry-run wrote the hook script: %v", err)
	}

	writeFile(t, conf, "post-build-hook = /etc/nix/upload-to-s3\n")
	out, err := use()
	if err == nil || !strings.Contains(out, "already runs the post-build-hook /etc/nix/upload-to-s3") {
		t.Errorf("with another hook: %v\n%s", err, out)
	}
	if got := readFile(t, conf); got != "post-build-hook = /etc/nix/upload-to-s3\n" {
		t.Errorf("nix.conf changed though refused:\n%s", got)
	}
	if _, err := os.Stat(hook); !os.IsNotExist(err) {
		t.Errorf("the hook script was written though refused: %v", err)
	}

	writeFile(t, conf, "")
	if out, err := use(); err != nil {
		t.Fatalf("cached use --post-build-hook: %v\n%s", err, out)
	}
	if got, want := readFile(t, conf), "extra-substituters = "+srv.URL+"\nextra-trusted-public-keys = "+srv.Pub+"\npost-build-hook = "+hook+"\n"; got != want {
		t.Errorf("nix.conf:\n%s\nwant:\n%s", got, want)
	}
	if info, err := os.Stat(hook); err != nil || info.Mode().Perm() != 0o755 || !strings.Contains(readFile(t, hook), "exec '"+binary+"' post-build-hook --to '"+srv.URL+"'\n") {
		t.Errorf("hook script %v %v:\n%s", info, err, readFile(t, hook))
	}
}

// TestPushProgressOnTerminal runs cached push on a terminal (a pty, by
// util-linux's script): one progress line, redrawn, with paths and bytes
// done and total, then the summary; no line per path.
func TestPushProgressOnTerminal(t *testing.T) {
	script, err := exec.LookPath("script")
	if err != nil {
		t.Fatalf("no script(1) (util-linux) to give cached a terminal: %v", err)
	}
	nixtest.Each(t, func(t *testing.T, nix *nixtest.Nix) {
		srv := startCache(t, blobBackend{name: "disk"})
		m := newMachine(t, nix)
		m.cached("use", srv.URL, "--token", srv.Token)
		expr := filepath.Join(t.TempDir(), "default.nix")
		writeFile(t, expr, closureExpr(nixtest.Nonce()))
		top := strings.TrimSpace(m.Run("nix-build", "--no-out-link", expr))

		// script runs, on a new pty, the command that runs cached push in
		// this client's environment (in its root, for a client in one).
		push := m.Nix.Command(m.Env, binary, "push", top)
		quoted := make([]string, len(push.Args))
		for i, a := range push.Args {
			quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		cmd := exec.Command(script, "--quiet", "--return", "--command", strings.Join(quoted, " "), "/dev/null")
		cmd.Env = push.Env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("cached push on a terminal: %v\n%q", err, out)
		}
		got := string(out)
		for _, want := range []string{"\r\x1b[Kpushing: 0/4 paths, 0 B/", "\r\x1b[Kpushing: 4/4 paths", "\npushed 4 of 4 paths"} {
			if !strings.Contains(got, want) {
				t.Errorf("the terminal got no %q:\n%q", want, got)
			}
		}
		if strings.Contains(got, "pushed "+nix.HostPath(top)) || strings.Contains(got, "pushed "+top) {
			t.Errorf("a line per path on a terminal:\n%q", got)
		}
	})
}
