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
	Closure      int64                      // bytes of compressed NARs
	NarInfo      map[string]map[int][2]load // kind → connections → {nginx, cached}
	NAR          map[int][2]load            // connections → {nginx, cached}
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
	BigMiB       int64
	Memory       memory
	Large        *large
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
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
		"%d runs per server and load, alternating between the servers, the median kept; "+
		"pushes and substitutions are the median of %d. On a shared VM single runs vary by 10–20%%.\n\n", d, repeat, len(r.PushStatic))

	var t table
	t.row("measurement", "nginx", "cached", "cached/nginx", "target")
	t.row("---", "---:", "---:", "---:", "---")
	for _, kind := range []string{"hit", "miss"} {
		for _, c := range []int{1, 16, 64} {
			p, ok := r.NarInfo[kind][c]
			if !ok {
				continue
			}
			n, m := p[0], p[1]
			ratio := m.RPS() / n.RPS()
			target := "—"
			switch kind {
			case "hit":
				target = check(ratio >= 1, "≥ 1.0")
			case "miss":
				hit := r.NarInfo["hit"][c][1]
				target = check(m.RPS() >= hit.RPS(), fmt.Sprintf("≥ cached's hits (%.0f/s)", hit.RPS()))
			}
			t.row(fmt.Sprintf("narinfo %ss/s, %d conn", kind, c), fmt.Sprintf("%.0f", n.RPS()), fmt.Sprintf("%.0f", m.RPS()),
				fmt.Sprintf("%.2f", ratio), target)
			t.row(fmt.Sprintf("narinfo %s p50 / p99 µs, %d conn", kind, c),
				fmt.Sprintf("%.0f / %.0f", n.P50Micros, n.P99Micros), fmt.Sprintf("%.0f / %.0f", m.P50Micros, m.P99Micros),
				fmt.Sprintf("%.2f", m.P99Micros/n.P99Micros), check(m.P99Micros <= 2*n.P99Micros, "p99 ≤ 2.0"))
		}
	}
	for _, c := range []int{1, 16} {
		p, ok := r.NAR[c]
		if !ok {
			continue
		}
		ratio := p[1].MBps() / p[0].MBps()
		t.row(fmt.Sprintf("NAR download MB/s (%.1f MB), %d stream(s)", float64(r.NARBytes)/1e6, c),
			fmt.Sprintf("%.0f", p[0].MBps()), fmt.Sprintf("%.0f", p[1].MBps()), fmt.Sprintf("%.2f", ratio), check(ratio >= 0.9, "≥ 0.9"))
	}
	if len(r.SubstStatic) > 0 {
		s, c := median(r.SubstStatic), median(r.SubstCached)
		ratio := c.Seconds() / s.Seconds()
		t.row("`nix copy --from` the closure, s (median)", secs(s), secs(c), fmt.Sprintf("%.2f", ratio), check(ratio <= 1.1, "≤ 1.1"))
	}
	if len(r.PullFirst) > 0 {
		s, f, c := median(r.SubstStatic), median(r.PullFirst), median(r.PullSecond)
		ratio := f.Seconds() / s.Seconds()
		t.row("pull-through: first `nix copy --from` through cached (upstream: the nginx column), s (median)", secs(s), secs(f),
			fmt.Sprintf("%.2f", ratio), check(ratio <= 1.1, "≤ 1.1"))
		t.row("pull-through: second `nix copy --from` (from cached's storage), s (median)", secs(s), secs(c),
			fmt.Sprintf("%.2f", c.Seconds()/s.Seconds()), "—")
	}
	if len(r.PushUpstream) > 0 {
		p, u := median(r.PushCached), median(r.PushUpstream)
		ratio := u.Seconds() / p.Seconds()
		t.row("`nix copy --to` cached with an upstream, s (median; nginx column: cached without one)", secs(p), secs(u),
			fmt.Sprintf("%.2f", ratio), check(ratio <= 1.1, "≤ 1.1"))
	}
	if len(r.PushStatic) > 0 {
		s, c := median(r.PushStatic), median(r.PushCached)
		ratio := c.Seconds() / s.Seconds()
		t.row("`nix copy --to` the closure, s (median; nginx column: `file://`)", secs(s), secs(c), fmt.Sprintf("%.2f", ratio), check(ratio <= 1.25, "≤ 1.25"))
	}
	if len(r.PushDAV) > 0 {
		d, c := median(r.PushDAV), median(r.PushCached)
		t.row("`nix copy --to` the closure over HTTP, s (median; nginx column: WebDAV PUT, no checks or fsync)", secs(d), secs(c),
			fmt.Sprintf("%.2f", c.Seconds()/d.Seconds()), "— (the floor over HTTP)")
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
