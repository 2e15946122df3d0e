package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/nix-cached/cached/gc"
)

// errProblems is returned by `cached verify` when the cache is inconsistent.
var errProblems = errors.New("the cache is inconsistent")

// runVerify checks the cache's consistency, printing one line per problem
// and a summary. It works while a server runs on the same data directory.
func runVerify(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	usageFlags(fs, `usage: cached verify [--contents]

Checks the cache's consistency: every published path has its NAR, listing
and references, nothing is half deleted, nothing is quarantined. With
--contents it also re-reads every NAR and checks its hashes and sizes.
It prints one line per problem and exits 1 if there is any.`)
	data := addDataFlags(fs)
	contents := fs.Bool("contents", false, "also re-read every NAR file and check its hashes and sizes")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: verify takes no arguments, got %q", errUsage, fs.Args())
	}
	// An empty cache verifies clean: refuse a data directory that is not there.
	b, err := data.openExisting(ctx)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	defer b.Close()
	rep, err := gc.Verify(ctx, b.cat, b.store, gc.VerifyOptions{Contents: *contents})
	for _, p := range rep.Problems {
		fmt.Fprintln(stdout, p)
	}
	if err != nil {
		return fmt.Errorf("verify: could not finish after %d paths: %w", rep.Paths, err)
	}
	summary := fmt.Sprintf("verified %d paths, %d NARs, %d bytes", rep.Paths, rep.NARs, rep.Bytes)
	if len(rep.Problems) > 0 {
		fmt.Fprintf(stdout, "%s: %d problems\n", summary, len(rep.Problems))
		return fmt.Errorf("%w: %d problems", errProblems, len(rep.Problems))
	}
	fmt.Fprintf(stdout, "%s: OK\n", summary)
	return nil
}
