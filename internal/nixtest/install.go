package nixtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// Nix is one installed Nix client: the host's (Debian bookworm's Nix 2.8),
// or a current one in a Debian sid root that runs under chroot, so that the
// host keeps its own libc. Both share the loopback network, so a server on
// 127.0.0.1 is reachable from either.
type Nix struct {
	// Name names the client in subtests: "nix-2.8", "nix-2.34".
	Name string
	// Version is what `nix --version` printed: "2.8.0", "2.34.8".
	Version string
	// Root is the chroot's directory, "" for the host's client. The
	// client's /nix/store is Root+"/nix/store" on the host.
	Root string
}

// Major and minor version numbers of a client: 2.34.8 → 2, 34.
func (n *Nix) minor() (int, int) {
	var major, minor int
	fmt.Sscanf(n.Version, "%d.%d", &major, &minor) //nolint:errcheck // zero on failure
	return major, minor
}

// AtLeast tells whether the client is Nix major.minor or newer.
func (n *Nix) AtLeast(major, minor int) bool {
	ma, mi := n.minor()
	return ma > major || ma == major && mi >= minor
}

// HostPath returns where path, as the client names it, is on the host.
func (n *Nix) HostPath(path string) string {
	if n.Root == "" {
		return path
	}
	return filepath.Join(n.Root, path)
}

// SidRoot returns the directory of the Debian sid root that
// scripts/test-deps builds: $CACHED_NIX_SID_ROOT, or
// $HOME/.cache/cached-ci/sid.
func SidRoot() string {
	if d := os.Getenv("CACHED_NIX_SID_ROOT"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".cache", "cached-ci", "sid")
}

var (
	findOnce sync.Once
	found    []*Nix
	missing  []string // why a client is missing, one reason each
)

var versionLine = regexp.MustCompile(`\(Nix\) (\d+\.\d+\S*)`)

// find looks for the host's client and the sid root's, once per process.
func find() {
	if os.Geteuid() != 0 {
		missing = append(missing, "the Nix tests run the single-user Nix client as root")
		return
	}
	if _, err := exec.LookPath("nix-build"); err != nil {
		missing = append(missing, "the host's Nix client (nix-build) is not installed; run scripts/test-deps")
	} else if n, err := probe(""); err != nil {
		missing = append(missing, err.Error())
	} else {
		found = append(found, n)
	}
	root := SidRoot()
	if _, err := os.Stat(filepath.Join(root, "usr", "bin", "nix-build")); err != nil {
		missing = append(missing, fmt.Sprintf("no current Nix client in a Debian sid root at %s; run scripts/test-deps", root))
	} else if n, err := probe(root); err != nil {
		missing = append(missing, err.Error())
	} else {
		found = append(found, n)
	}
}

// probe asks the client in root (the host's if "") for its version.
func probe(root string) (*Nix, error) {
	n := &Nix{Root: root}
	cmd := n.Command([]string{"HOME=/root"}, "nix", "--version")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("running nix --version in %q: %v\n%s", root, err, out)
	}
	m := versionLine.FindSubmatch(out)
	if m == nil {
		return nil, fmt.Errorf("nix --version in %q printed %q", root, out)
	}
	n.Version = string(m[1])
	major, minor := n.minor()
	n.Name = fmt.Sprintf("nix-%d.%d", major, minor)
	return n, nil
}

// Find returns every installed Nix client, oldest first, and why any is
// missing (one reason each), for programs that are not tests (the
// benchmark harness, bench/compare).
func Find() ([]*Nix, []string) {
	findOnce.Do(find)
	return found, missing
}

// Clients returns every installed Nix client, oldest first. A missing
// client skips the test, or fails it when CACHED_REQUIRE_NIX=1.
func Clients(t testing.TB) []*Nix {
	t.Helper()
	findOnce.Do(find)
	if len(missing) > 0 {
		why := strings.Join(missing, "; ")
		if os.Getenv("CACHED_REQUIRE_NIX") == "1" {
			t.Fatalf("CACHED_REQUIRE_NIX=1 but %s", why)
		}
		if len(found) == 0 {
			t.Skip(why)
		}
		t.Log(why)
	}
	return found
}

// Host returns the host's client, skipping or failing t as Require does.
func Host(t testing.TB) *Nix {
	t.Helper()
	for _, n := range Clients(t) {
		if n.Root == "" {
			return n
		}
	}
	t.Skip("the host's Nix client is not installed")
	return nil
}

// Each runs f as a subtest for every installed Nix client, named after it
// ("nix-2.8", "nix-2.34").
func Each(t *testing.T, f func(t *testing.T, n *Nix)) {
	t.Helper()
	for _, n := range Clients(t) {
		t.Run(n.Name, func(t *testing.T) { f(t, n) })
	}
}

// Require skips t when no Nix client is installed or we are not root, or
// fails it when CACHED_REQUIRE_NIX=1 and a client is missing.
func Require(t testing.TB) { t.Helper(); Clients(t) }

// chrootScript mounts what a client needs in its root, in a mount
// namespace of its own (so nothing stays mounted when it exits), and runs
// the command there with only the environment given. The temporary
// directory is mounted at the same path, so files a test writes there
// (expressions, netrc files, narinfo caches, file:// caches) have the
// same names inside and out. A file given as online is mounted over the
// kernel's list of online CPUs (see cpusFile).
const chrootScript = `set -e
root=$1 tmp=$2 online=$3; shift 3
mount --bind /proc "$root/proc"
mount --rbind /dev "$root/dev"
mount --bind /sys "$root/sys"
[ -z "$online" ] || mount --bind "$online" "$root/sys/devices/system/cpu/online"
mkdir -p "$root$tmp"
mount --bind "$tmp" "$root$tmp"
exec chroot "$root" /usr/bin/env -i "$@"`

// hostScript runs a command of the host's client with a file mounted over
// the list of online CPUs, in a mount namespace of its own.
const hostScript = `set -e
mount --bind "$1" /sys/devices/system/cpu/online
shift
exec "$@"`

// Command returns a command that runs name in n's environment: env (KEY=
// value entries) added to this process's for the host's client, or alone
// with HOME and PATH inside the root.
func (n *Nix) Command(env []string, name string, args ...string) *exec.Cmd {
	return n.command(env, "", name, args...)
}

// command is Command with online, when not "", mounted over the list of
// online CPUs (a file from cpusFile).
func (n *Nix) command(env []string, online, name string, args ...string) *exec.Cmd {
	var cmd *exec.Cmd
	switch {
	case n.Root == "" && online == "":
		cmd = exec.Command(name, args...)
	case n.Root == "":
		cmd = exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "sh", "-c", hostScript, "sh", online, name}, args...)...)
	default:
		full := append([]string{"--mount", "--propagation", "private", "sh", "-c", chrootScript, "sh",
			n.Root, os.TempDir(), online, "HOME=/root", "PATH=/usr/bin:/bin"}, env...)
		full = append(append(full, name), args...)
		cmd = exec.Command("unshare", full...)
		env = nil // the script passes them to the command alone
	}
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

// cpusFile returns a file that lists CPUs 0 to cpus-1 as online, in the
// kernel's format. Mounted over /sys/devices/system/cpu/online, it makes
// glibc's get_nprocs, and so Nix's thread pools (which size themselves by
// std::thread::hardware_concurrency), see that many CPUs: Nix 2.34
// uploads as many paths at once as it sees CPUs, up to
// http-connections, so a test can push as a 16-core CI runner does.
func cpusFile(cpus int) (string, error) {
	path := filepath.Join(os.TempDir(), fmt.Sprintf("nixtest-cpus-%d", cpus))
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	f, err := os.CreateTemp(os.TempDir(), "nixtest-cpus-*")
	if err != nil {
		return "", err
	}
	_, werr := fmt.Fprintf(f, "0-%d\n", cpus-1)
	if err := errors.Join(werr, f.Close()); err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return path, os.Rename(f.Name(), path)
}
