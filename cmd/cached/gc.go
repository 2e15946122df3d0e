package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/gc"
	"github.com/nix-cached/cached/stats"
	"github.com/nix-cached/cached/upstream"
)

// gcFlags are the retention settings that `serve` and `gc` share.
type gcFlags struct {
	retention       time.Duration
	mirrorRetention time.Duration
	maxSize         int64
	uploadLease     time.Duration
}

func addGCFlags(fs *flag.FlagSet) *gcFlags {
	g := &gcFlags{retention: 365 * 24 * time.Hour, uploadLease: 24 * time.Hour}
	fs.Var(durationFlag{&g.retention}, "retention", "keep paths used within this `duration` (and their closures); e.g. 365d, 30d, 12h")
	fs.Var(durationFlag{&g.mirrorRetention}, "mirror-retention", "keep paths mirrored from an upstream only this `duration` after their last use when an upstream still has them (shorter than --retention; default: --retention)")
	fs.Var(sizeFlag{&g.maxSize}, "max-size", "size `quota` for stored NARs (e.g. 500G); least recently used paths go first, closures stay whole (default: none)")
	fs.Var(durationFlag{&g.uploadLease}, "upload-lease", "how long an uploaded NAR that no narinfo claims is kept")
	return g
}

// collector builds the garbage collector for an opened cache; pull, the
// upstreams (or nil), confirm what --mirror-retention may remove.
func (g *gcFlags) collector(b *backend, log *slog.Logger, pull *upstream.Puller) (*gc.Collector, error) {
	if g.retention <= 0 {
		return nil, fmt.Errorf("%w: --retention %s: want a positive duration, such as 365d or 30d", errUsage, durationFlag{&g.retention})
	}
	if g.mirrorRetention > 0 && g.mirrorRetention >= g.retention {
		return nil, fmt.Errorf("%w: --mirror-retention %s is not shorter than --retention %s", errUsage, g.mirrorRetention, g.retention)
	}
	opt := gc.Options{
		Retention:       g.retention,
		MirrorRetention: g.mirrorRetention,
		MaxSize:         g.maxSize,
		UploadLease:     g.uploadLease,
		Logger:          log,
	}
	if g.mirrorRetention > 0 {
		if pull == nil {
			return nil, fmt.Errorf("%w: --mirror-retention needs --upstream and --upstream-key, to ask whether an upstream still has a path", errUsage)
		}
		opt.UpstreamHas = func(ctx context.Context, hashPart string) bool {
			_, err := pull.NarInfo(ctx, hashPart)
			return err == nil
		}
	}
	return gc.New(b.cat, b.store, opt)
}

// runGC collects garbage once, or with --dry-run prints what it would
// remove. It works while a server runs on the same data; if a collection
// is already running (the server's, or another gc), it says so and fails.
func runGC(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("gc", flag.ContinueOnError)
	usageFlags(fs, `usage: cached gc [--dry-run] [--retention D] [--max-size SIZE] [flags]

Removes what is not pinned, not used within the retention, and not in the
closure of a path that stays; with --max-size, the least recently used
closures go first until the rest fits. It works while a server runs on the
same data, and refuses while another collection runs.`)
	data := addDataFlags(fs)
	g := addGCFlags(fs)
	up := addUpstreamFlags(fs)
	dry := fs.Bool("dry-run", false, "print what would be removed, and why, without removing anything")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: gc takes no arguments, got %q", errUsage, fs.Args())
	}
	pull, err := up.puller(prometheus.NewRegistry())
	if err != nil {
		return err
	}
	b, err := data.openExisting(ctx)
	if err != nil {
		return fmt.Errorf("gc: %w", err)
	}
	defer b.Close()
	col, err := g.collector(b, slog.New(slog.NewTextHandler(os.Stderr, nil)), pull)
	if err != nil {
		return err
	}
	if *dry {
		plan, err := col.Plan(ctx)
		if err != nil {
			return err
		}
		printPlan(stdout, plan.Remove, "would remove")
		printSummary(stdout, plan, "would remove", len(plan.Remove), plan.RemoveBytes)
		return nil
	}
	res, err := col.Run(ctx)
	if err != nil {
		return fmt.Errorf("gc: %w", err)
	}
	kept := make(map[string]bool, len(res.Kept))
	for _, k := range res.Kept {
		kept[k.HashPart] = true
	}
	removed := make([]gc.Doomed, 0, len(res.Remove))
	for _, d := range res.Remove {
		if !kept[d.HashPart] {
			removed = append(removed, d)
		}
	}
	printPlan(stdout, removed, "removed")
	for _, k := range res.Kept {
		fmt.Fprintf(stdout, "kept\t%s\tbecame live during the collection\n", k.StorePath)
	}
	printSummary(stdout, res.Plan, "removed", res.Removed, res.BytesRemoved)
	return nil
}

func printPlan(w io.Writer, paths []gc.Doomed, verb string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, d := range paths {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", verb, d.StorePath, stats.Size(d.FileSize), d.Reason)
	}
	tw.Flush()
}

func printSummary(w io.Writer, p gc.Plan, verb string, n int, bytes int64) {
	fmt.Fprintf(w, "%s %d of %d paths (%s); %d live paths (%s) kept; cutoff %s\n",
		verb, n, p.Paths, stats.Size(bytes), p.LivePaths, stats.Size(p.LiveBytes), p.Cutoff.UTC().Format(time.RFC3339))
	if p.OverQuota {
		fmt.Fprintln(w, "warning: live data alone (pinned and recently used closures) exceeds --max-size")
	}
}

// pinCommands are the subcommands of cached pin.
var pinCommands = []subcommand{
	{"add", "NAME STOREPATH [--keep N] [--expires DURATION]"},
	{"rm", "NAME"},
	{"ls", ""},
}

const pinWhat = `Named roots: a pinned path keeps its whole closure through every
collection, whatever the retention and the quota.`

// runPin manages named roots: a pinned path keeps its whole closure.
func runPin(ctx context.Context, args []string, stdout io.Writer) error {
	sub, err := groupCommand(stdout, "pin", pinWhat, pinCommands, args)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("pin "+sub, flag.ContinueOnError)
	data := addDataFlags(fs)
	keep := new(int)
	var expires time.Duration
	switch sub {
	case "add":
		usageFlags(fs, subUsage("pin", pinCommands, sub, `Pins STOREPATH (a store path, its basename or hash part, published in
the cache) under NAME. Adding a pin with an existing name makes the new
path the name's current pin.`))
		keep = fs.Int("keep", 0, "keep the previous `N` paths of this name pinned too")
		fs.Var(durationFlag{&expires}, "expires", "the pin lapses after this `duration` (default: never)")
	case "rm":
		usageFlags(fs, subUsage("pin", pinCommands, sub, "Removes the pins called NAME (the current one and kept previous ones)."))
	case "ls":
		usageFlags(fs, subUsage("pin", pinCommands, sub, "Lists the pins: name, path, current or previous, created, expiry."))
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if want := map[string]int{"add": 2, "rm": 1, "ls": 0}[sub]; fs.NArg() != want {
		return fmt.Errorf("%w: %s", errUsage, strings.TrimPrefix(subUsage("pin", pinCommands, sub, ""), "usage: "))
	}
	if *keep < 0 {
		return fmt.Errorf("%w: --keep %d: want 0 or more", errUsage, *keep)
	}
	b, err := data.openExisting(ctx)
	if err != nil {
		return fmt.Errorf("pin: %w", err)
	}
	defer b.Close()
	switch sub {
	case "add":
		p, err := lookupPath(ctx, b.cat, fs.Arg(1))
		if err != nil {
			return err
		}
		pin := catalog.Pin{Name: fs.Arg(0), HashPart: p.HashPart, StorePath: p.StorePath, CreatedAt: time.Now()}
		if expires > 0 {
			pin.ExpiresAt = pin.CreatedAt.Add(expires)
		}
		if err := b.cat.AddPin(ctx, pin, *keep); err != nil {
			return fmt.Errorf("pin: %w", err)
		}
		fmt.Fprintf(stdout, "pinned %s as %s\n", p.StorePath, pin.Name)
		return nil
	case "rm":
		if err := b.cat.RemovePin(ctx, fs.Arg(0)); errors.Is(err, catalog.ErrNotFound) {
			return fmt.Errorf("no pin named %q (cached pin ls lists them)", fs.Arg(0))
		} else if err != nil {
			return err
		}
		return nil
	}
	pins, err := b.cat.Pins(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	for _, p := range pins {
		state, expiry := "current", "never"
		if !p.Current {
			state = "previous"
		}
		if !p.ExpiresAt.IsZero() {
			expiry = p.ExpiresAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\texpires %s\n", p.Name, p.StorePath, state, p.CreatedAt.UTC().Format(time.RFC3339), expiry)
	}
	return tw.Flush()
}

// lookupPath finds a published path from a store path, a basename or a
// hash part.
func lookupPath(ctx context.Context, cat catalog.Catalog, arg string) (catalog.Path, error) {
	hash, err := hashPartOf(arg)
	if err != nil {
		return catalog.Path{}, err
	}
	p, err := cat.Path(ctx, hash)
	if err != nil {
		return catalog.Path{}, fmt.Errorf("%s: %w", arg, err)
	}
	return p, nil
}

// runStats prints what the cache holds (or, with --json, the JSON that the
// admin endpoint serves).
func runStats(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("stats", flag.ContinueOnError)
	usageFlags(fs, `usage: cached stats [--json]

Prints what the cache holds: paths, NARs and bytes, bytes by last use,
uploads no narinfo claimed yet, pins, and the last collection.`)
	data := addDataFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON, as GET /_cached/stats serves it")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: stats takes no arguments, got %q", errUsage, fs.Args())
	}
	b, err := data.openExisting(ctx)
	if err != nil {
		return fmt.Errorf("stats: %w", err)
	}
	defer b.Close()
	rep, err := stats.Collect(ctx, b.cat, time.Now())
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(stdout, rep)
	}
	return rep.WriteText(stdout)
}

// pathCommands are the subcommands of cached path.
var pathCommands = []subcommand{{"rm", "STOREPATH [--force] [--dry-run]"}}

// runPath handles `cached path rm STOREPATH [--force] [--dry-run]`.
func runPath(ctx context.Context, args []string, stdout io.Writer) error {
	sub, err := groupCommand(stdout, "path", "Removes one path from the cache, now, whatever the retention.", pathCommands, args)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("path "+sub, flag.ContinueOnError)
	usageFlags(fs, subUsage("path", pathCommands, sub, `Removes STOREPATH (a store path, its basename or hash part) from the cache,
with its NAR when no other path shares it, and its build log. A path that
other paths reference, or that is pinned, is refused unless --force.`))
	data := addDataFlags(fs)
	force := fs.Bool("force", false, "also remove every path that references it, directly or not, and their pins, so no closure breaks")
	dry := fs.Bool("dry-run", false, "print what would be removed, and which pins would go, without removing anything")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: %s", errUsage, strings.TrimPrefix(subUsage("path", pathCommands, sub, ""), "usage: "))
	}
	hash, err := hashPartOf(fs.Arg(0))
	if err != nil {
		return err
	}
	b, err := data.openExisting(ctx)
	if err != nil {
		return fmt.Errorf("path rm: %w", err)
	}
	defer b.Close()
	// Retention plays no part in removing one path.
	col, err := gc.New(b.cat, b.store, gc.Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err != nil {
		return err
	}
	plan, pins, err := col.PlanRemovePath(ctx, hash, *force)
	if err != nil {
		return fmt.Errorf("path rm: %w", err)
	}
	if *dry {
		printPlan(stdout, plan, "would remove")
		printUnpinned(stdout, pins, "would unpin")
		return nil
	}
	removed, err := col.RemovePath(ctx, hash, *force)
	printPlan(stdout, removed, "removed")
	gone := map[string]bool{}
	for _, d := range removed {
		gone[d.HashPart] = true
	}
	printUnpinned(stdout, slices.DeleteFunc(pins, func(p catalog.Pin) bool { return !gone[p.HashPart] }), "unpinned")
	if err != nil {
		return fmt.Errorf("path rm: %w", err)
	}
	return nil
}

// printUnpinned lists the pins that go with removed paths.
func printUnpinned(w io.Writer, pins []catalog.Pin, verb string) {
	for _, p := range pins {
		fmt.Fprintf(w, "%s\t%s\t%s\n", verb, p.Name, p.StorePath)
	}
}
