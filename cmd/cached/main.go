// Command cached is a Nix binary cache server.
//
//	cached serve [flags]                          run the cache
//	cached keygen NAME SECRET_FILE PUBLIC_FILE    make a signing key pair
//	cached token create|ls|rm                     manage tokens
//	cached gc | pin | path rm | stats | verify    retention and maintenance
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

const usageText = `cached: a Nix binary cache server

usage:
  cached serve [flags]                        serve the cache (cached serve -h lists flags)
  cached keygen NAME SECRET_FILE PUBLIC_FILE  make a signing key pair, as nix-store --generate-binary-cache-key
  cached token create|ls|rm                   manage tokens (cached token for details)
  cached verify [--contents]                  check the cache's consistency (--contents re-reads every NAR)
  cached gc [--dry-run] [--retention D]       remove what is not pinned, recently used or in their closures
  cached pin add NAME STOREPATH [--keep N] [--expires D] | pin rm NAME | pin ls
                                              named roots: a pinned path keeps its whole closure
  cached path rm STOREPATH [--force] [--dry-run]
                                              remove one path (--force: with everything that references it)
  cached stats [--json]                       paths, bytes, bytes by last use, pins, last gc
  cached ls [PATTERN]                         the paths whose name contains PATTERN
  cached info STOREPATH                       what the cache knows of a path
  cached keys status | generate               key rollover: every path re-signed with the current keys
  cached version                              the version and revision this binary was built from

cached COMMAND -h (or cached help COMMAND) lists the flags of a command.

On the machines that use a cache:
  cached use URL [--token T]                  configure Nix to substitute from the cache (and push to it)
  cached push [--to URL] PATH...              push closures, so they come back after a local GC
  cached collect [--to URL] [--dry-run]       garbage-collect the local store, archiving to the cache first
  cached post-build-hook [--to URL]           Nix's post-build-hook: push each build (cached use --post-build-hook)

The maintenance commands take the same --data-dir and --storage as serve and
work while a server runs on the same data. Only serve creates a data
directory: the others refuse one that holds no cache.

Every flag can also be set as CACHED_<FLAG> in the environment (CACHED_DATA_DIR for
--data-dir) or in a file given with --config (lines "data-dir = /var/lib/cached").
`

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return 2
	}
	helpOutput = stdout
	if args[0] == "help" && len(args) > 1 {
		args = append(args[1:2], "-h")
	}
	if args[0] != "post-build-hook" { // Nix runs the hook: its output goes to the build log
		warnUnknownEnv(stderr, os.Environ())
	}
	var err error
	switch args[0] {
	case "serve":
		err = runServe(ctx, args[1:], stdout)
	case "keygen":
		err = runKeygen(args[1:], stdout)
	case "token":
		err = runToken(ctx, args[1:], stdout)
	case "verify":
		err = runVerify(ctx, args[1:], stdout)
	case "gc":
		err = runGC(ctx, args[1:], stdout)
	case "pin":
		err = runPin(ctx, args[1:], stdout)
	case "stats":
		err = runStats(ctx, args[1:], stdout)
	case "path":
		err = runPath(ctx, args[1:], stdout)
	case "use":
		err = runUse(ctx, args[1:], stdout)
	case "push":
		err = runPush(ctx, args[1:], stdout)
	case "collect":
		err = runCollect(ctx, args[1:], stdout)
	case "post-build-hook":
		err = runPostBuildHook(ctx, args[1:], stderr)
	case "keys":
		err = runKeys(ctx, args[1:], stdout)
	case "ls":
		err = runLs(ctx, args[1:], stdout)
	case "info":
		err = runInfo(ctx, args[1:], stdout)
	case "version", "--version":
		fmt.Fprintln(stdout, version())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usageText)
		return 0
	default:
		err = fmt.Errorf("%w: unknown command %q", errUsage, args[0])
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "cached: %v\n", err)
		return 2
	}
	fmt.Fprintf(stderr, "cached: %v\n", err)
	return 1
}
