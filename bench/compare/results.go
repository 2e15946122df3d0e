package main

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// results is everything one run measured.
type results struct {
	Machine      string
	Missing      []string      // why a Nix client is missing
	Clients      []*clientRuns // the timings of each Nix client, the host's first
	ClosurePaths int
	Closure      int64                       // bytes of compressed NARs
	NarInfo      map[string]map[int]compared // kind → connections
	NAR          map[int]compared            // connections
	NARBytes     int64
	RemoteDelay  time.Duration // of the remote upstream: nginx behind a delay
	SmallPaths   int           // the closure of small paths
	Ncps         string        // ncps's version, "" when not measured (-ncps)
	NcpsHits     map[int]compared
	BigMiB       int64
	Memory       memory
	Large        *large
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// spread renders the median of xs with its minimum and maximum:
// "1.02 (0.95–1.10)".
func spread(xs []float64, format string) string {
	s := slices.Clone(xs)
	slices.Sort(s)
	m := fmt.Sprintf(format, s[len(s)/2])
	if len(s) == 1 {
		return m
	}
	return m + " (" + fmt.Sprintf(format, s[0]) + "–" + fmt.Sprintf(format, s[len(s)-1]) + ")"
}

func medianOf(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func seconds(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = d.Seconds()
	}
	return out
}

// timedRow is a row comparing two timed series, round by round: each
// column's median (min–max), and the ratio of b to a in each round.
func (t *table) timedRow(what string, a, b []time.Duration, target func(ratio float64) string) {
	ratios := ratiosOf(a, b)
	t.row(what, spread(seconds(a), "%.2f"), spread(seconds(b), "%.2f"), spread(ratios, "%.2f"), target(medianOf(ratios)))
}

// ratiosOf is b over a, round by round.
func ratiosOf(a, b []time.Duration) []float64 {
	n := min(len(a), len(b))
	ratios := make([]float64, n)
	for i := range n {
		ratios[i] = b[i].Seconds() / a[i].Seconds()
	}
	return ratios
}

// table accumulates Markdown rows.
type table struct{ b strings.Builder }

func (t *table) row(cells ...string) {
	t.b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
}

// check renders a target and whether it was met.
func check(ok bool, target string) string {
	if ok {
		return "✅ " + target
	}
	return "❌ " + target
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f", d.Seconds()) }
