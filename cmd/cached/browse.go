package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/stats"
	"github.com/nix-cached/cached/web"
)

// lsPage is how many paths cached ls reads from the catalog at a time.
const lsPage = 1000

// runLs lists the published paths whose name contains PATTERN.
func runLs(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("ls", flag.ContinueOnError)
	usageFlags(fs, `usage: cached ls [PATTERN] [--limit N]

Lists the paths the cache holds whose name (the part of the store path
after the hash) contains PATTERN, ignoring case; all of them without one.
Each line: the store path, its NAR's size, and when it was last used.
It works while a server runs on the same data.`)
	data := addDataFlags(fs)
	limit := fs.Int("limit", 0, "list at most `N` paths (0: all)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return fmt.Errorf("%w: cached ls takes one PATTERN at most, got %q", errUsage, fs.Args())
	}
	if *limit < 0 {
		return fmt.Errorf("%w: --limit %d: want 0 or more", errUsage, *limit)
	}
	b, err := data.openExisting(ctx)
	if err != nil {
		return fmt.Errorf("ls: %w", err)
	}
	defer b.Close()
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	after, n := "", 0
	for {
		page, err := b.cat.SearchPaths(ctx, fs.Arg(0), after, lsPage)
		if err != nil {
			return fmt.Errorf("ls: %w", err)
		}
		for _, p := range page {
			if *limit > 0 && n == *limit {
				return tw.Flush()
			}
			fmt.Fprintf(tw, "%s\t%s\tused %s\n", p.StorePath, stats.Size(p.NarSize), p.LastUsed.UTC().Format(time.DateOnly))
			n++
		}
		if len(page) < lsPage {
			return tw.Flush()
		}
		last := page[len(page)-1]
		after = last.HashPart + "-" + catalog.PathName(last)
	}
}

// runInfo prints what the cache knows of one path.
func runInfo(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("info", flag.ContinueOnError)
	usageFlags(fs, `usage: cached info STOREPATH [--json]

Prints what the cache knows of STOREPATH (a store path, its basename or
hash part): its NAR, its closure's size, references and referrers, pins,
when it was pushed and last used, whether it was mirrored from an
upstream, its signatures and its files. It works while a server runs on
the same data.`)
	data := addDataFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: cached info STOREPATH", errUsage)
	}
	hash, err := hashPartOf(fs.Arg(0))
	if err != nil {
		return err
	}
	b, err := data.openExisting(ctx)
	if err != nil {
		return fmt.Errorf("info: %w", err)
	}
	defer b.Close()
	ui, err := web.New(web.Config{Catalog: b.cat, Store: b.store, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err != nil {
		return err
	}
	d, err := ui.Details(ctx, hash)
	if errors.Is(err, catalog.ErrNotFound) {
		return fmt.Errorf("info: %s is not in the cache", fs.Arg(0))
	}
	if err != nil {
		return fmt.Errorf("info: %w", err)
	}
	if *asJSON {
		d.NarInfo = strings.TrimRight(d.NarInfo, "\n")
		return writeJSON(stdout, d)
	}
	return writeInfo(stdout, d)
}

// writeInfo prints a path's details for a terminal.
func writeInfo(w io.Writer, d web.PathDetails) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, a...)...) }
	row("path", "%s", d.StorePath)
	if d.NAR != nil {
		row("nar", "%s (%s as stored, %s), %s", stats.Size(d.NarSize), stats.Size(d.NAR.FileSize), d.NAR.Compression, d.NAR.Key)
	} else {
		row("nar", "%s", stats.Size(d.NarSize))
	}
	c := d.Closure
	more := ""
	if c.Capped {
		more = " (at least; the count stopped there)"
	}
	if c.Missing > 0 {
		more += fmt.Sprintf(", %d references not in the cache", c.Missing)
	}
	row("closure", "%d paths, %s%s", c.Paths, stats.Size(c.NarSize), more)
	row("pushed", "%s", d.CreatedAt.UTC().Format(time.RFC3339))
	row("last used", "%s", d.LastUsed.UTC().Format(time.RFC3339))
	mirrored := "no (pushed)"
	if d.Mirrored {
		mirrored = "yes (from an upstream)"
	}
	row("mirrored", "%s", mirrored)
	if d.Deriver != "" {
		row("deriver", "%s", d.Deriver)
	}
	for i, sig := range d.Signatures {
		row(label("signatures", i), "%s", sig)
	}
	for i, p := range d.Pins {
		state := "current"
		if !p.Current {
			state = "previous"
		}
		row(label("pins", i), "%s (%s)", p.Name, state)
	}
	for i, l := range d.References {
		row(label("references", i), "%s", orHash(l))
	}
	for i, l := range d.Referrers {
		row(label("referrers", i), "%s", orHash(l))
	}
	if d.MoreReferrers > 0 {
		row("", "and %d more", d.MoreReferrers)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "files:")
	if d.Listing.Problem != "" {
		fmt.Fprintf(w, "  %s\n", d.Listing.Problem)
	}
	for _, e := range d.Listing.Entries {
		name := e.Name
		if e.Depth == 0 {
			name = "."
		}
		detail := e.Kind()
		switch {
		case e.Type == "regular":
			detail += " " + stats.Size(e.Size)
		case e.Type == "symlink":
			detail += " -> " + e.Target
		}
		fmt.Fprintf(w, "  %s%s  %s\n", strings.Repeat("  ", e.Depth), name, detail)
	}
	if d.Listing.Truncated {
		fmt.Fprintln(w, "  (more files not shown)")
	}
	return nil
}

// label is a key on its first row and blank on the next ones.
func label(key string, i int) string {
	if i == 0 {
		return key
	}
	return ""
}

// orHash is a linked path's store path, or its hash part when the cache
// does not hold it.
func orHash(l web.Link) string {
	if l.StorePath == "" {
		return l.HashPart + " (not in the cache)"
	}
	return l.StorePath
}
