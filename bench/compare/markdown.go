package main

import (
	"fmt"
	"strings"
	"time"
)

// clientsLine says which Nix clients timed the pushes and substitutions.
func (r *results) clientsLine() string {
	var names []string
	for _, c := range r.Clients {
		where := "the host's, Debian bookworm"
		if c.Chroot {
			where = "Debian sid's, run under chroot with a store of its own"
		}
		names = append(names, fmt.Sprintf("%s (%s)", c.Version, where))
	}
	line := "- **Nix clients:** " + strings.Join(names, " and ")
	if len(names) > 1 {
		line += "; every push and substitution is timed with each, the clients taking turns within a round as the servers do, " +
			"and each row names its client"
	} else {
		line += " only"
	}
	if len(r.Missing) > 0 {
		line += " (" + strings.Join(r.Missing, "; ") + ")"
	}
	return line + ".\n"
}

func (r *results) markdown(d time.Duration, repeat int) string {
	var out strings.Builder
	rounds := 0
	if len(r.Clients) > 0 {
		rounds = len(r.Clients[0].PushStatic)
	}
	fmt.Fprintf(&out, "# cached vs nginx serving a static cache\n\n")
	fmt.Fprintf(&out, "Written by `make bench` (`go run ./bench/compare`); do not edit by hand.\n\n")
	fmt.Fprintf(&out, "- **Machine:** %s.\n", r.Machine)
	out.WriteString(r.clientsLine())
	fmt.Fprintf(&out, "- **Content:** a closure of %d store paths built by Nix, %.1f MB of zstd NARs; "+
		"the static cache was written by `nix copy --to file://DIR?compression=zstd&secret-key=…` "+
		"and is served by nginx (sendfile, keep-alive, access log, a worker per core); cached got the same closure "+
		"through `nix copy --to http://…?compression=zstd`, and runs with its defaults (SQLite, disk, a log line per request). "+
		"Pushes are also timed into nginx's WebDAV PUT (a file per upload, written as it comes: no checks, no metadata, no fsync), "+
		"the least any server can do for `nix copy --to http://`, so that row is the Nix client's own cost over HTTP.\n", r.ClosurePaths, float64(r.Closure)/1e6)
	fmt.Fprintf(&out, "- **Load:** wrk on the same machine, %v per run, one thread per core (at most one per connection); "+
		"%d runs per server and load, alternating between the servers; "+
		"pushes and substitutions are timed %d times per client, alternating likewise. Each cell is the median (minimum–maximum); "+
		"a ratio compares each cached run with the nginx run next to it. On a shared VM single runs vary by 10–20%%.\n\n", d, repeat, rounds)

	var t table
	t.row("measurement", "nginx", "cached", "cached/nginx (per run)", "target")
	t.row("---", "---:", "---:", "---:", "---")
	r.servingRows(&t)
	le := func(max float64) func(float64) string {
		return func(r float64) string { return check(r <= max, fmt.Sprintf("≤ %g", max)) }
	}
	none := func(float64) string { return "—" }
	subst := func(r float64) string { return check(r <= 1.0, "≤ 1.0× nginx") }
	push := func(r float64) string { return check(r <= 1.25, "≤ 1.25× nginx WebDAV") }
	type series = func(*clientRuns) []time.Duration
	// perClient adds a row per client that has the series.
	perClient := func(what string, a, b series, target func(float64) string) {
		for _, c := range r.Clients {
			if len(a(c)) > 0 && len(b(c)) > 0 {
				t.timedRow(c.label()+": "+what, a(c), b(c), target)
			}
		}
	}
	perClient("`nix copy --from` the closure, s",
		func(c *clientRuns) []time.Duration { return c.SubstStatic }, func(c *clientRuns) []time.Duration { return c.SubstCached }, subst)
	perClient("`nix copy --from` the closure over HTTPS (HTTP/2), s",
		func(c *clientRuns) []time.Duration { return c.TLSStatic }, func(c *clientRuns) []time.Duration { return c.TLSCached }, subst)
	perClient(fmt.Sprintf("`nix copy --from` a closure of %d small paths, s", r.SmallPaths),
		func(c *clientRuns) []time.Duration { return c.SmallStatic }, func(c *clientRuns) []time.Duration { return c.SmallCached }, subst)
	perClient(fmt.Sprintf("`nix copy --to` a closure of %d small paths, s (nginx column: WebDAV PUT)", r.SmallPaths),
		func(c *clientRuns) []time.Duration { return c.SmallPushDAV }, func(c *clientRuns) []time.Duration { return c.SmallPushCached }, push)
	perClient("pull-through: first `nix copy --from` through cached (upstream: the nginx column), s",
		func(c *clientRuns) []time.Duration { return c.SubstStatic }, func(c *clientRuns) []time.Duration { return c.PullFirst }, le(1.1))
	perClient("pull-through: second `nix copy --from` (from cached's storage), s",
		func(c *clientRuns) []time.Duration { return c.SubstStatic }, func(c *clientRuns) []time.Duration { return c.PullSecond }, none)
	perClient(fmt.Sprintf("pull-through from an upstream %v away: first `nix copy --from` through cached (nginx column: straight from it), s", r.RemoteDelay),
		func(c *clientRuns) []time.Duration { return c.RemoteDirect }, func(c *clientRuns) []time.Duration { return c.RemotePrefetch }, le(1.1))
	perClient(fmt.Sprintf("pull-through from an upstream %v away with `--upstream-prefetch=false`, s", r.RemoteDelay),
		func(c *clientRuns) []time.Duration { return c.RemoteDirect }, func(c *clientRuns) []time.Duration { return c.RemoteNoPrefetch }, none)
	perClient("`nix copy --to` cached with an upstream, s (nginx column: cached without one)",
		func(c *clientRuns) []time.Duration { return c.PushCached }, func(c *clientRuns) []time.Duration { return c.PushUpstream }, le(1.1))
	perClient("`nix copy --to` the closure, s (nginx column: WebDAV PUT, no checks or fsync)",
		func(c *clientRuns) []time.Duration { return c.PushDAV }, func(c *clientRuns) []time.Duration { return c.PushCached }, push)
	perClient("`nix copy --to` the closure, s (nginx column: `file://`)",
		func(c *clientRuns) []time.Duration { return c.PushStatic }, func(c *clientRuns) []time.Duration { return c.PushCached }, none)
	r.memoryRows(&t)
	out.WriteString(t.b.String())
	if l := r.Large; l != nil {
		fmt.Fprintf(&out, "\nThe %d synthetic paths (each with its own NAR record and up to 3 references to earlier ones, "+
			"created and last used at random over two years; a %.0f MiB database) took %s s to write. The collection said: `%s`\n",
			l.Paths, l.DBSizeMiB, secs(l.Fill), l.GCSummary)
	}
	if r.Ncps != "" {
		out.WriteString(r.peers())
	}
	return out.String()
}

// servingRows are the rows of wrk's loads: narinfo hits and misses, and
// NAR downloads (no Nix client involved).
func (r *results) servingRows(t *table) {
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
}

// memoryRows are cached's memory with a big NAR and its figures with a
// large catalog.
func (r *results) memoryRows(t *table) {
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
			// The target is the rate with the small catalog, measured
			// earlier in the run over the same connections.
			ratio, target := "—", check(h.P99Micros < 2000, "p99 < 2 ms")
			if small, ok := r.NarInfo["hit"][c]; ok && small.Median[1].RPS() > 0 {
				x := h.RPS() / small.Median[1].RPS()
				ratio = fmt.Sprintf("%.2f of cached's rate with the small catalog", x)
				target = check(x >= 0.9 && h.P99Micros < 2000, "≥ 0.9 of it, p99 < 2 ms")
			}
			t.row(fmt.Sprintf("%d paths: narinfo hits/s, p50 / p99 µs, %d conn", l.Paths, c), "—",
				fmt.Sprintf("%.0f, %.0f / %.0f", h.RPS(), h.P50Micros, h.P99Micros), ratio, target)
			t.row(fmt.Sprintf("%d paths: narinfo misses/s, p50 / p99 µs, %d conn", l.Paths, c), "—",
				fmt.Sprintf("%.0f, %.0f / %.0f", ms.RPS(), ms.P50Micros, ms.P99Micros), "—", check(ms.P99Micros < 2000, "p99 < 2 ms"))
		}
		t.row(fmt.Sprintf("%d paths: `cached gc --retention %dd`, s", l.Paths, l.RetainDays), "—", secs(l.GC), "—", check(l.GC < time.Minute, "< 60 s"))
	}
}

// peers is the section on ncps: each of its measurements beside nginx's
// measured next to it, and cached's ratio for the same measurement.
func (r *results) peers() string {
	var out strings.Builder
	fmt.Fprintf(&out, "\n## Peers\n\n"+
		"[ncps](https://github.com/kalbasit/ncps) %s, built from its own repository (not part of this one) and given with `-ncps`: "+
		"a fresh SQLite database and local storage for each measurement, nginx's static cache as its only upstream "+
		"(an empty one for the pushes), `allow-put-verb` on, pushed to under `/upload`, its other settings its defaults. "+
		"Each ncps run is compared with the nginx run next to it, as above; "+
		"the last column is cached's ratio for the same measurement, from the table above.\n\n", r.Ncps)
	var t table
	t.row("measurement", "nginx", "ncps", "ncps/nginx (per run)", "cached/nginx (median)")
	t.row("---", "---:", "---:", "---:", "---:")
	for _, c := range []int{1, 16, 64} {
		p, ok := r.NcpsHits[c]
		if !ok {
			continue
		}
		cached := "—"
		if q, ok := r.NarInfo["hit"][c]; ok {
			cached = fmt.Sprintf("%.2f", medianOf(q.Ratios))
		}
		t.row(fmt.Sprintf("narinfo hits/s, %d conn (after a first fetch through ncps)", c),
			spread(p.Runs[0], "%.0f"), spread(p.Runs[1], "%.0f"), spread(p.Ratios, "%.2f"), cached)
	}
	type series = func(*clientRuns) []time.Duration
	row := func(what string, a, b, cached series) {
		for _, c := range r.Clients {
			if len(a(c)) == 0 || len(b(c)) == 0 {
				continue
			}
			ratios := ratiosOf(a(c), b(c))
			t.row(c.label()+": "+what, spread(seconds(a(c)), "%.2f"), spread(seconds(b(c)), "%.2f"), spread(ratios, "%.2f"),
				fmt.Sprintf("%.2f", medianOf(ratiosOf(a(c), cached(c)))))
		}
	}
	row("`nix copy --to` the closure, s (nginx column: WebDAV PUT)",
		func(c *clientRuns) []time.Duration { return c.PushDAV }, func(c *clientRuns) []time.Duration { return c.PushNcps },
		func(c *clientRuns) []time.Duration { return c.PushCached })
	row("pull-through: first `nix copy --from` through ncps (upstream: the nginx column), s",
		func(c *clientRuns) []time.Duration { return c.SubstStatic }, func(c *clientRuns) []time.Duration { return c.NcpsFirst },
		func(c *clientRuns) []time.Duration { return c.PullFirst })
	row("pull-through: second `nix copy --from` through ncps, s",
		func(c *clientRuns) []time.Duration { return c.SubstStatic }, func(c *clientRuns) []time.Duration { return c.NcpsSecond },
		func(c *clientRuns) []time.Duration { return c.PullSecond })
	out.WriteString(t.b.String())
	return out.String()
}
