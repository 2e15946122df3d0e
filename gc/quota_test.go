package gc

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nix-cached/cached/ingest"
)

// quotaCache is a cache with one path dead by retention ("stale"), five
// independent paths p1..p5 last used on days 1..5, and a chain top → base
// where top was used on day 6 but base on day 0.
type quotaCache struct {
	f     *fixture
	paths map[string]pushed
	size  map[string]int64 // NAR file sizes
}

func newQuotaCache(t *testing.T) *quotaCache {
	f := newFixture(t, ingest.ModeZstd)
	q := &quotaCache{f: f, paths: make(map[string]pushed), size: make(map[string]int64)}
	add := func(p pushed) {
		q.paths[p.Name] = p
		q.size[p.Name] = f.nar(p.Path).FileSize
	}
	add(f.node("stale"))
	f.clock.Advance(400 * day)
	add(f.node("base"))
	for _, n := range []string{"p1", "p2", "p3", "p4", "p5"} {
		f.clock.Advance(day)
		// Distinct sizes, so that a wrong choice shows in the bytes.
		add(f.nodeWith(n, []byte(strings.Repeat(n+" is a path of some length ", 10*len(q.paths)))))
	}
	f.clock.Advance(day)
	add(f.node("top", "base"))
	f.clock.Advance(day)
	return q
}

// bytes sums the NAR sizes of the named paths.
func (q *quotaCache) bytes(names ...string) int64 {
	var n int64
	for _, name := range names {
		n += q.size[name]
	}
	return n
}

// TestCollectQuota: over the quota, the least recently used paths go
// first, closures stay whole, and what must stay is reported when it alone
// exceeds the quota.
func TestCollectQuota(t *testing.T) {
	live := []string{"base", "p1", "p2", "p3", "p4", "p5", "top"}
	tests := []struct {
		name      string
		maxSize   func(q *quotaCache) int64
		pins      []string
		want      []string // removed besides "stale", in order
		overQuota bool
	}{
		{"no quota", func(q *quotaCache) int64 { return 0 }, nil, nil, false},
		{"fits", func(q *quotaCache) int64 { return q.bytes(live...) }, nil, nil, false},
		{"one byte over", func(q *quotaCache) int64 { return q.bytes(live...) - 1 }, nil, []string{"p1"}, false},
		{"two paths over", func(q *quotaCache) int64 { return q.bytes(live...) - q.size["p1"] - q.size["p2"] }, nil,
			[]string{"p1", "p2"}, false},
		{"just short of two", func(q *quotaCache) int64 { return q.bytes(live...) - q.size["p1"] - 1 }, nil,
			[]string{"p1", "p2"}, false},
		// base is the least recently used, but top keeps it: the chain goes
		// only when top does, after every p.
		{"closure kept whole", func(q *quotaCache) int64 { return q.bytes("top", "base") - 1 }, nil,
			[]string{"p1", "p2", "p3", "p4", "p5", "top", "base"}, false},
		{"only the chain fits", func(q *quotaCache) int64 { return q.bytes("top", "base") }, nil,
			[]string{"p1", "p2", "p3", "p4", "p5"}, false},
		{"pins alone over", func(q *quotaCache) int64 { return q.bytes("p2", "top", "base") - 1 }, []string{"p2", "top"},
			[]string{"p1", "p3", "p4", "p5"}, true},
		{"pins fit", func(q *quotaCache) int64 { return q.bytes("p2", "top", "base") }, []string{"p2", "top"},
			[]string{"p1", "p3", "p4", "p5"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newQuotaCache(t)
			f := q.f
			for _, name := range tt.pins {
				f.pin(name, q.paths[name], 0, time.Time{})
			}
			maxSize := tt.maxSize(q)
			col := f.collector(Options{MaxSize: maxSize})
			p := plan(t, col)
			res := run(t, col)
			want := append([]string{"stale"}, tt.want...)
			if got := names(res.Remove); !slices.Equal(got, want) {
				t.Fatalf("removed %v, want %v", got, want)
			}
			if res.OverQuota != tt.overQuota {
				t.Errorf("OverQuota %v, want %v", res.OverQuota, tt.overQuota)
			}
			if maxSize > 0 && !res.OverQuota && res.LiveBytes > maxSize {
				t.Errorf("live bytes %d over the quota %d", res.LiveBytes, maxSize)
			}
			var kept []string
			for _, n := range live {
				if !slices.Contains(want, n) {
					kept = append(kept, n)
				}
			}
			if wantBytes := q.bytes(kept...); res.LiveBytes != wantBytes || res.LivePaths != len(kept) {
				t.Errorf("live %d paths, %d bytes; want %d, %d", res.LivePaths, res.LiveBytes, len(kept), wantBytes)
			}
			for _, d := range res.Remove[1:] {
				if wantReason := "over quota: least recently used (last used " +
					d.LastUsed.UTC().Format(time.DateOnly) + ")"; d.Reason != wantReason {
					t.Errorf("%s: reason %q, want %q", d.StorePath, d.Reason, wantReason)
				}
			}
			switch {
			case tt.overQuota:
				if !res.Cutoff.Equal(res.Started) {
					t.Errorf("over quota: cutoff %v, want the start %v", res.Cutoff, res.Started)
				}
			case len(tt.want) == 0:
				if want := res.Started.Add(-365 * day); !res.Cutoff.Equal(want) {
					t.Errorf("cutoff %v, want the retention's %v", res.Cutoff, want)
				}
			}
			if !slices.Equal(names(p.Remove), names(res.Remove)) {
				t.Errorf("dry run %v, run %v", names(p.Remove), names(res.Remove))
			}
			for _, n := range kept {
				f.requireAlive(q.paths[n])
			}
			for _, n := range want {
				f.requireGone(q.paths[n])
			}
			f.requireClean()
		})
	}
}
