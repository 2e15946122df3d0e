package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"
)

const hookUsage = `usage: cached post-build-hook [--to URL] [--store STORE] [--timeout D]

Nix's post-build-hook, which cached use --post-build-hook installs: pushes
the outputs of the build Nix just ran (OUT_PATHS, or the outputs of
DRV_PATH when that is empty) with their closure, as cached push does, and
exits 0 whatever happens: Nix stops building when its hook fails, so a
cache that is down, slow or refusing is reported and the build goes on;
the next push carries what this one missed. The push is bounded by
--timeout, and each HTTP request is tried once with a 5 s connect timeout
(Nix 2.8 to 2.32 resend a failed PUT without its body, then stall).`

func runPostBuildHook(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("post-build-hook", flag.ContinueOnError)
	usageFlags(fs, hookUsage)
	pf := addPushFlags(fs, "push from")
	timeout := fs.Duration("timeout", 5*time.Minute, "give a push up after this `duration` (the build goes on)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: post-build-hook takes no arguments (Nix passes OUT_PATHS in the environment)\n%s", errUsage, hookUsage)
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "cached post-build-hook: "+format+"\n", a...) }
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	p, err := pf.push(ctx, stderr)
	if errors.Is(err, errUsage) {
		return err
	}
	if err != nil {
		logf("%v; the build is not affected", err)
		return nil
	}
	p.TTY = false
	p.Options = []string{"connect-timeout", "5", "download-attempts", "1"}
	paths, err := p.Nix.HookPaths(ctx, os.Getenv)
	switch {
	case err != nil:
		logf("%v", err)
		return nil
	case len(paths) == 0:
		logf("no output paths: nothing to push")
		return nil
	}
	if _, err := p.Run(ctx, paths); err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			logf("push to %s gave up after %v; the build is not affected", p.Cache.Redacted(), *timeout)
		} else {
			logf("push to %s failed; the build is not affected: %v", p.Cache.Redacted(), err)
		}
	}
	return nil
}
