// Package stats reports what the cache holds: paths, bytes, bytes by the
// age of their last use, pins and the last garbage collection. `cached
// stats` prints it; the admin endpoint serves it as JSON.
package stats

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/nix-cached/cached/catalog"
)

// Ages are the upper bounds of the last-use buckets.
var Ages = []time.Duration{24 * time.Hour, 7 * 24 * time.Hour, 30 * 24 * time.Hour, 90 * 24 * time.Hour, 365 * 24 * time.Hour}

// Bucket is the paths last used within an age.
type Bucket struct {
	Within string `json:"within"` // "1d", …, or "older"
	Paths  int    `json:"paths"`
	Bytes  int64  `json:"bytes"`
}

// GC is the last garbage collection.
type GC struct {
	Started      time.Time `json:"started"`
	Finished     time.Time `json:"finished"`
	Holder       string    `json:"holder"`
	PathsRemoved int       `json:"paths_removed"`
	NARsRemoved  int       `json:"nars_removed"`
	BytesRemoved int64     `json:"bytes_removed"`
	LivePaths    int       `json:"live_paths"`
	LiveBytes    int64     `json:"live_bytes"`
	Error        string    `json:"error,omitempty"`
}

// Report is everything stats reports.
type Report struct {
	Paths          int      `json:"paths"`
	NARs           int      `json:"nars"`
	Bytes          int64    `json:"bytes"`
	UnclaimedNARs  int      `json:"unclaimed_nars"`
	UnclaimedBytes int64    `json:"unclaimed_bytes"`
	Pins           int      `json:"pins"`
	ByLastUse      []Bucket `json:"by_last_use"`
	LastGC         *GC      `json:"last_gc,omitempty"`
}

// Collect gathers the report from the catalog.
func Collect(ctx context.Context, cat catalog.Catalog, now time.Time) (Report, error) {
	s, err := cat.Stats(ctx, now, Ages)
	if err != nil {
		return Report{}, fmt.Errorf("stats: %w", err)
	}
	r := Report{Paths: s.Paths, NARs: s.NARs, Bytes: s.Bytes, UnclaimedNARs: s.UnclaimedNARs,
		UnclaimedBytes: s.UnclaimedBytes, Pins: s.Pins}
	for i, b := range s.ByLastUse {
		within := "older"
		if i < len(Ages) {
			within = days(Ages[i])
		}
		r.ByLastUse = append(r.ByLastUse, Bucket{Within: within, Paths: b.Paths, Bytes: b.Bytes})
	}
	g, err := cat.LastGCRun(ctx)
	switch {
	case err == nil:
		r.LastGC = &GC{Started: g.Started, Finished: g.Finished, Holder: g.Holder, PathsRemoved: g.PathsRemoved,
			NARsRemoved: g.NARsRemoved, BytesRemoved: g.BytesRemoved, LivePaths: g.LivePaths,
			LiveBytes: g.LiveBytes, Error: g.Error}
	case !errors.Is(err, catalog.ErrNotFound):
		return Report{}, fmt.Errorf("stats: %w", err)
	}
	return r, nil
}

func days(d time.Duration) string { return fmt.Sprintf("%dd", int(d.Hours()/24)) }

// Size renders a byte count for people: 1.5 GiB.
func Size(b int64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := int64(unit), 0
	for n := b / unit; n >= unit && exp < 4; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTP"[exp])
}

// WriteText prints the report for people.
func (r Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "paths\t%d\n", r.Paths)
	fmt.Fprintf(tw, "NARs\t%d\t%s\n", r.NARs, Size(r.Bytes))
	fmt.Fprintf(tw, "unclaimed uploads\t%d\t%s\n", r.UnclaimedNARs, Size(r.UnclaimedBytes))
	fmt.Fprintf(tw, "pins\t%d\n", r.Pins)
	fmt.Fprintln(tw, "last used\tpaths\tbytes")
	for _, b := range r.ByLastUse {
		label := "within " + b.Within
		if b.Within == "older" {
			label = "longer ago"
		}
		fmt.Fprintf(tw, "  %s\t%d\t%s\n", label, b.Paths, Size(b.Bytes))
	}
	if g := r.LastGC; g != nil {
		status := "ok"
		if g.Error != "" {
			status = "failed: " + g.Error
		}
		fmt.Fprintf(tw, "last gc\t%s\t%s, removed %d paths (%s), %d live paths (%s), %s\n",
			g.Finished.UTC().Format(time.RFC3339), g.Finished.Sub(g.Started).Round(time.Millisecond),
			g.PathsRemoved, Size(g.BytesRemoved), g.LivePaths, Size(g.LiveBytes), status)
	} else {
		fmt.Fprintln(tw, "last gc\tnever")
	}
	return tw.Flush()
}
