package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/nix-cached/cached/internal/nixtest"
)

// closureExpr is a Nix expression for a closure of paths+1 store paths:
// paths leaves that each reference up to two earlier ones, every 20th
// holding 4 MB of random bytes (so about 40 MB in all, as in a small
// application's runtime closure) and the others a few KiB of text, and a
// top path referencing them all. seed makes the paths new. A small
// closure has no large leaves, and each leaf references only its parent
// in a binary tree, so that a client can upload or fetch many paths at
// once.
func closureExpr(paths int, seed string, small bool) string {
	blob, refs := "[ $(( ${toString i} % 20 )) = 0 ]", "[ (builtins.elemAt leaves (i - 1)) (builtins.elemAt leaves (i / 2)) ]"
	if small {
		blob, refs = "false", "[ (builtins.elemAt leaves ((i - 1) / 2)) ]"
	}
	return fmt.Sprintf(`let
  mk = i: deps: derivation {
    name = "bench-%[2]s-${toString i}";
    system = builtins.currentSystem;
    builder = "/bin/sh";
    PATH = "/usr/bin:/bin";
    inherit deps;
    # A file, not the environment: the top path of thousands of leaves
    # names more than one environment string may hold (128 KiB).
    passAsFile = [ "deps" ];
    args = [ "-c" ''
      mkdir -p $out/share
      cat $depsPath > $out/share/deps
      if %[3]s; then head -c 4000000 /dev/urandom > $out/share/blob
      else seq 1 $(( ${toString i} * 7 + 500 )) > $out/share/data; fi
    '' ];
  };
  leaves = builtins.genList (i: mk i (if i == 0 then [ ] else
    %[4]s)) %[1]d;
in mk "top" leaves
`, paths, seed, blob, refs)
}

// nixEnv is the environment of every Nix command, beside HOME and PATH:
// root without build users or sandbox, no substituters but those a
// command names, the given trusted keys and netrc, and a private narinfo
// cache per call so that no run sees what an earlier one looked up. Every
// file it names is under the work directory, which is under os.TempDir:
// nixtest mounts that at the same path in the sid root, so the chroot's
// client finds them under the same names.
func (b *bench) nixEnv() ([]string, error) {
	cache, err := os.MkdirTemp(b.work, "xdg-cache-")
	if err != nil {
		return nil, err
	}
	conf := strings.Join([]string{
		"experimental-features = nix-command",
		"build-users-group =",
		"sandbox = false",
		"substituters =",
		"netrc-file = " + b.netrc,
		"trusted-public-keys = " + strings.Join(b.trusted, " "),
	}, "\n")
	env := []string{"NIX_CONFIG=" + conf, "XDG_CACHE_HOME=" + cache, "NIX_REMOTE="}
	if b.caFile != "" {
		env = append(env, "NIX_SSL_CERT_FILE="+b.caFile) // read by Nix 2.8 and 2.34 alike
	}
	return env, nil
}

// nix runs a command of the host's Nix client: see nixOn.
func (b *bench) nix(ctx context.Context, args ...string) (string, time.Duration, error) {
	return b.nixOn(ctx, b.host, args...)
}

// nixOn runs a Nix command with client n (in its sid root when it has
// one) and returns its standard output and how long it took.
func (b *bench) nixOn(ctx context.Context, n *nixtest.Nix, args ...string) (string, time.Duration, error) {
	env, err := b.nixEnv()
	if err != nil {
		return "", 0, err
	}
	c := n.Command(env, args[0], args[1:]...)
	if c.Err != nil {
		return "", 0, c.Err
	}
	cmd := exec.CommandContext(ctx, c.Path, c.Args[1:]...)
	cmd.Env = c.Env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	took := time.Since(start)
	if err != nil {
		return "", 0, fmt.Errorf("%s (Nix %s): %w\n%s", strings.Join(args, " "), n.Version, err, stderr.String())
	}
	return string(out), took, nil
}

// buildClosure builds the closure with the host's client and returns its
// top path and every path in it.
func (b *bench) buildClosure(ctx context.Context, paths int, seed string, small bool) (string, []string, error) {
	out, _, err := b.nix(ctx, "nix-build", "--no-out-link", "-E", closureExpr(paths, seed, small))
	if err != nil {
		return "", nil, err
	}
	top := strings.TrimSpace(out)
	out, _, err = b.nix(ctx, "nix-store", "-qR", top)
	if err != nil {
		return "", nil, err
	}
	return top, strings.Fields(out), nil
}

// pushTo times `nix copy --to URL top` with client n.
func (b *bench) pushTo(ctx context.Context, n *nixtest.Nix, url, top string) (time.Duration, error) {
	_, took, err := b.nixOn(ctx, n, "nix", "copy", "--to", url, top)
	return took, err
}

// pushToDAV times `nix copy --to` into nginx's WebDAV on a new root. Nix
// checks its narinfo cache before it asks the server, so the new URL (a
// new port) is what keeps earlier rounds from hiding the uploads.
func (b *bench) pushToDAV(ctx context.Context, n *nixtest.Nix, root, top string) (time.Duration, error) {
	dav, err := b.startDAV(ctx, root)
	if err != nil {
		return 0, err
	}
	defer dav.stop()
	took, err := b.pushTo(ctx, n, dav.URL+"?compression=zstd", top)
	if err != nil {
		return 0, err
	}
	if _, err := os.Stat(filepath.Join(root, strings.TrimPrefix(top, "/nix/store/")[:32]+".narinfo")); err != nil {
		return 0, fmt.Errorf("after nix copy --to nginx WebDAV (Nix %s): %w", n.Version, err)
	}
	return took, nil
}

// substituteFrom times `nix copy --from URL top` with client n into a
// new, empty local store under the work directory (the same path inside
// the sid root), checking the signatures against the trusted keys, and
// then checks the copy with the same client.
func (b *bench) substituteFrom(ctx context.Context, n *nixtest.Nix, url, top string) (time.Duration, error) {
	root, err := os.MkdirTemp(b.work, "store-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(root)
	_, took, err := b.nixOn(ctx, n, "nix", "copy", "--from", url, "--to", root, top)
	if err != nil {
		return 0, err
	}
	if _, err := os.Stat(filepath.Join(root, top)); err != nil {
		return 0, fmt.Errorf("after nix copy --from %s (Nix %s): %w", url, n.Version, err)
	}
	if _, _, err := b.nixOn(ctx, n, "nix", "store", "verify", "--store", root, "--no-trust", "-r", top); err != nil {
		return 0, err
	}
	return took, nil
}

// substituteEach substitutes top with client n from nginx and then from
// cached, appending the times to static and to cached; what names the
// closure in the log.
func (b *bench) substituteEach(ctx context.Context, n *nixtest.Nix, ngx, srv *server, top, what string, static, cached *[]time.Duration) error {
	for _, s := range []*server{ngx, srv} {
		b.logf("substitute, Nix %s: %s from %s", n.Version, what, s.name)
		took, err := b.substituteFrom(ctx, n, s.URL, top)
		if err != nil {
			return err
		}
		if s == ngx {
			*static = append(*static, took)
		} else {
			*cached = append(*cached, took)
		}
	}
	return nil
}
