package client

import (
	"context"
	"fmt"
	"strings"
)

// Nix runs its post-build-hook (a program named in nix.conf, run without
// arguments) after every build, with its own environment plus OUT_PATHS,
// the outputs just built separated by spaces, and DRV_PATH. `cached use
// --post-build-hook` writes a script that runs `cached post-build-hook`,
// which pushes those outputs with their closure.

// HookPaths returns the outputs of the build that ran the hook: OUT_PATHS,
// or, when that is empty, the outputs of DRV_PATH as the store knows them
// (Nix 2.8.0 passes an empty OUT_PATHS, NixOS/nix#6446, and 2.30-2.31 do
// on rebuilds, NixOS/nix#14287).
func (n *Nix) HookPaths(ctx context.Context, getenv func(string) string) ([]string, error) {
	if paths := strings.Fields(getenv("OUT_PATHS")); len(paths) > 0 {
		return paths, nil
	}
	drv := getenv("DRV_PATH")
	if drv == "" {
		return nil, nil
	}
	out, err := n.output(ctx, nil, "nix-store", "--query", "--outputs", drv)
	if err != nil {
		return nil, fmt.Errorf("OUT_PATHS is empty and the outputs of %s are unknown: %w", drv, err)
	}
	return strings.Fields(string(out)), nil
}

// HookScript is the post-build-hook that `cached use --post-build-hook`
// installs: it runs the cached binary at bin to push each build to url.
func HookScript(bin, url string) string {
	return "#!/bin/sh\n" +
		"# Written by cached use --post-build-hook. Nix runs it after every build\n" +
		"# (post-build-hook in nix.conf): it pushes the build's outputs, with their\n" +
		"# closure, to the cache, and never fails a build. The push token comes from\n" +
		"# the netrc file Nix reads.\n" +
		"exec " + shellQuote(bin) + " post-build-hook --to " + shellQuote(url) + "\n"
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
