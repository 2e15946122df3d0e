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
	ClosurePaths int
	Closure      int64                       // bytes of compressed NARs
	NarInfo      map[string]map[int]compared // kind → connections
	NAR          map[int]compared            // connections
	NARBytes     int64
	PushStatic   []time.Duration
	PushCached   []time.Duration
	PushDAV      []time.Duration // into nginx's WebDAV: the HTTP floor
	SubstStatic  []time.Duration
	SubstCached  []time.Duration
	// Pull-through: cached with nginx's static cache as its upstream.
	PushUpstream []time.Duration // push into a cached whose upstream lacks the paths
	PullFirst    []time.Duration // first substitution through it (fetched upstream)
	PullSecond   []time.Duration // the second (from its own storage)
	// Pull-through from a remote upstream: nginx behind a delay.
	RemoteDelay      time.Duration
	RemoteDirect     []time.Duration // substituting straight from it
	RemotePrefetch   []time.Duration // through cached, prefetching
	RemoteNoPrefetch []time.Duration // through cached, --upstream-prefetch=false
	TLSStatic        []time.Duration // substituting over HTTPS/HTTP2 from nginx
	TLSCached        []time.Duration // and from cached (--tls-cert-file)
	SmallPaths       int             // the closure of small paths
	SmallStatic      []time.Duration // substituting it from nginx
	SmallCached      []time.Duration // and from cached
	BigMiB           int64
	Memory           memory
	Large            *large
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
	n := min(len(a), len(b))
	ratios := make([]float64, n)
	for i := range n {
		ratios[i] = b[i].Seconds() / a[i].Seconds()
	}
	t.row(what, spread(seconds(a), "%.2f"), spread(seconds(b), "%.2f"), spread(ratios, "%.2f"), target(medianOf(ratios)))
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

func (r *results) markdown(d time.Duration, repeat int) string {
	var out strings.Builder
	fmt.Fprintf(&out, "# cached vs nginx serving a static cache\n\n")
	fmt.Fprintf(&out, "Written by `make bench` (`go run ./bench/compare`); do not edit by hand.\n\n")
	fmt.Fprintf(&out, "- **Machine:** %s.\n", r.Machine)
	fmt.Fprintf(&out, "- **Content:** a closure of %d store paths built by Nix, %.1f MB of zstd NARs; "+
		"the static cache was written by `nix copy --to file://DIR?compression=zstd&secret-key=…` "+
		"and is served by nginx (sendfile, keep-alive, access log, a worker per core); cached got the same closure "+
		"through `nix copy --to http://…?compression=zstd`, and runs with its defaults (SQLite, disk, a log line per request). "+
		"Pushes are also timed into nginx's WebDAV PUT (a file per upload, written as it comes: no checks, no metadata, no fsync), "+
		"the least any server can do for `nix copy --to http://`, so that row is the Nix client's own cost over HTTP.\n", r.ClosurePaths, float64(r.Closure)/1e6)
	fmt.Fprintf(&out, "- **Load:** wrk on the same machine, %v per run, one thread per core (at most one per connection); "+
		"%d runs per server and load, alternating between the servers; "+
		"pushes and substitutions are timed %d times, alternating likewise. Each cell is the median (minimum–maximum); "+
		"a ratio compares each cached run with the nginx run next to it. On a shared VM single runs vary by 10–20%%.\n\n", d, repeat, len(r.PushStatic))

	var t table
	t.row("measurement", "nginx", "cached", "cached/nginx (per run)", "target")
	t.row("---", "---:", "---:", "---:", "---")
	for _, kind := range []string{"hit", "miss"} {
		for _, c := range []int{1, 16, 64} {
			p, ok := r.NarInfo[kind][c]
			if !ok {
				continue
			}
			n, m := p.Median[0], p.Median[1]
			ratio := medianOf(p.Ratios)
			target := "—"
			switch kind {
			case "hit":
				target = check(ratio >= 0.9, "≥ 0.9")
			case "miss":
				hit := r.NarInfo["hit"][c].Median[1]
				target = check(m.RPS() >= hit.RPS(), fmt.Sprintf("≥ cached's hits (%.0f/s)", hit.RPS()))
			}
			t.row(fmt.Sprintf("narinfo %s/s, %d conn", map[string]string{"hit": "hits", "miss": "misses"}[kind], c), spread(p.Runs[0], "%.0f"), spread(p.Runs[1], "%.0f"),
				spread(p.Ratios, "%.2f"), target)
			t.row(fmt.Sprintf("narinfo %s p50 / p99 µs, %d conn (median run)", kind, c),
				fmt.Sprintf("%.0f / %.0f", n.P50Micros, n.P99Micros), fmt.Sprintf("%.0f / %.0f", m.P50Micros, m.P99Micros),
				fmt.Sprintf("%.2f", m.P99Micros/n.P99Micros), check(m.P99Micros <= 2*n.P99Micros, "p99 ≤ 2.0"))
		}
	}
	for _, c := range []int{1, 16} {
		p, ok := r.NAR[c]
		if !ok {
			continue
		}
		mb := func(rps []float64) []float64 { // one NAR per request
			out := make([]float64, len(rps))
			for i, x := range rps {
				out[i] = x * float64(r.NARBytes) / 1e6
			}
			return out
		}
		t.row(fmt.Sprintf("NAR download MB/s (%.1f MB), %d stream(s)", float64(r.NARBytes)/1e6, c),
			spread(mb(p.Runs[0]), "%.0f"), spread(mb(p.Runs[1]), "%.0f"), spread(p.Ratios, "%.2f"), check(medianOf(p.Ratios) >= 0.9, "≥ 0.9"))
	}
	le := func(max float64) func(float64) string {
		return func(r float64) string { return check(r <= max, fmt.Sprintf("≤ %g", max)) }
	}
	none := func(float64) string { return "—" }
	if len(r.SubstStatic) > 0 {
		t.timedRow("`nix copy --from` the closure, s", r.SubstStatic, r.SubstCached, le(1.0))
	}
	if len(r.TLSStatic) > 0 {
		t.timedRow("`nix copy --from` the closure over HTTPS (HTTP/2), s", r.TLSStatic, r.TLSCached, le(1.0))
	}
	if len(r.SmallStatic) > 0 {
		t.timedRow(fmt.Sprintf("`nix copy --from` a closure of %d small paths, s", r.SmallPaths), r.SmallStatic, r.SmallCached, le(1.0))
	}
	if len(r.PullFirst) > 0 {
		t.timedRow("pull-through: first `nix copy --from` through cached (upstream: the nginx column), s", r.SubstStatic, r.PullFirst, le(1.1))
		t.timedRow("pull-through: second `nix copy --from` (from cached's storage), s", r.SubstStatic, r.PullSecond, none)
	}
	if len(r.RemoteDirect) > 0 {
		t.timedRow(fmt.Sprintf("pull-through from an upstream %v away: first `nix copy --from` through cached (nginx column: straight from it), s", r.RemoteDelay),
			r.RemoteDirect, r.RemotePrefetch, le(1.1))
		t.timedRow("the same with `--upstream-prefetch=false`, s", r.RemoteDirect, r.RemoteNoPrefetch, none)
	}
	if len(r.PushUpstream) > 0 {
		t.timedRow("`nix copy --to` cached with an upstream, s (nginx column: cached without one)", r.PushCached, r.PushUpstream, le(1.1))
	}
	if len(r.PushDAV) > 0 {
		t.timedRow("`nix copy --to` the closure, s (nginx column: WebDAV PUT, no checks or fsync)", r.PushDAV, r.PushCached, le(1.25))
	}
	if len(r.PushStatic) > 0 {
		t.timedRow("`nix copy --to` the closure, s (nginx column: `file://`)", r.PushStatic, r.PushCached, none)
	}
	if r.BigMiB > 0 {
		m := r.Memory
		t.row(fmt.Sprintf("peak RSS MiB pushing a %d MiB NAR (%.0f MB/s)", r.BigMiB, m.PushMBps), "—", fmt.Sprintf("%.0f", m.PushMiB), "—", check(m.PushMiB < 150, "< 150"))
		t.row(fmt.Sprintf("peak RSS MiB, 16 clients downloading it (%.0f MB/s)", m.Down16MBps), "—", fmt.Sprintf("%.0f", m.Down16MiB), "—", check(m.Down16MiB < 150, "< 150"))
	}
	if l := r.Large; l != nil {
		for _, c := range []int{1, 16, 64} {
			h, ok := l.Hits[c]
			if !ok {
				continue
			}
			ms := l.Misses[c]
			t.row(fmt.Sprintf("%d paths: narinfo hits/s, p50 / p99 µs, %d conn", l.Paths, c), "—",
				fmt.Sprintf("%.0f, %.0f / %.0f", h.RPS(), h.P50Micros, h.P99Micros), "—", check(h.P99Micros < 2000, "p99 < 2 ms"))
			t.row(fmt.Sprintf("%d paths: narinfo misses/s, p50 / p99 µs, %d conn", l.Paths, c), "—",
				fmt.Sprintf("%.0f, %.0f / %.0f", ms.RPS(), ms.P50Micros, ms.P99Micros), "—", check(ms.P99Micros < 2000, "p99 < 2 ms"))
		}
		t.row(fmt.Sprintf("%d paths: `cached gc --retention %dd`, s", l.Paths, l.RetainDays), "—", secs(l.GC), "—", check(l.GC < time.Minute, "< 60 s"))
	}
	out.WriteString(t.b.String())
	if l := r.Large; l != nil {
		fmt.Fprintf(&out, "\nThe %d synthetic paths (each with its own NAR record and up to 3 references to earlier ones, "+
			"created and last used at random over two years; a %.0f MiB database) took %s s to write. The collection said: `%s`\n",
			l.Paths, l.DBSizeMiB, secs(l.Fill), l.GCSummary)
	}
	return out.String()
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f", d.Seconds()) }
