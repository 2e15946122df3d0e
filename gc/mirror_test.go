package gc

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nix-cached/cached/ingest"
)

// Mirrored paths past the mirror retention go when an upstream still has
// them; those it lacks, pushed paths, and mirrored paths in a live
// closure keep the full retention.
func TestCollectMirrorRetention(t *testing.T) {
	f := newFixture(t, ingest.ModeZstd)
	ancient := f.mirrored("ancient")
	f.clock.Advance(400 * day)
	gone := f.mirrored("upstream-has")
	lost := f.mirrored("upstream-lost")
	pushedOld := f.node("pushed-old")
	lib := f.mirrored("lib-of-app")
	app := f.node("app", "lib-of-app")
	pinnedLib := f.mirrored("pinned-lib")
	f.pin("keep", f.node("pinned", "pinned-lib"), 0, time.Time{})
	f.clock.Advance(40 * day)
	fresh := f.mirrored("fresh")
	f.use(app)
	f.clock.Advance(20 * day) // 60 days since the first ones were used; ancient 460

	var mu sync.Mutex
	var asked []string
	has := func(_ context.Context, hashPart string) bool {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, hashPart)
		return hashPart != lost.HashPart
	}
	opt := Options{Retention: 365 * day, MirrorRetention: 30 * day, UpstreamHas: has}

	// gc --dry-run says the same, with the reason.
	p := plan(t, f.collector(opt))
	if got := sortedNames(p.Remove); !slices.Equal(got, []string{"ancient", "upstream-has"}) {
		t.Fatalf("plan removes %v, want [ancient upstream-has]", got)
	}
	if r := p.Remove[1].Reason; !strings.Contains(r, "mirror retention 30d") || !strings.Contains(r, "upstream still has it") {
		t.Errorf("reason %q does not name the mirror retention", r)
	}
	slices.Sort(asked)
	want := []string{gone.HashPart, lost.HashPart}
	slices.Sort(want)
	if !slices.Equal(asked, want) {
		t.Errorf("asked upstream about %v, want only the mirrored paths past the mirror retention and unreferenced %v", asked, want)
	}

	res := run(t, f.collector(opt))
	if got := sortedNames(res.Remove); !slices.Equal(got, []string{"ancient", "upstream-has"}) {
		t.Fatalf("removed %v, want [ancient upstream-has]", got)
	}
	f.requireGone(ancient, gone)
	f.requireAlive(lost, pushedOld, lib, app, fresh, pinnedLib)
	f.requireClean()

	// Without UpstreamHas the mirror retention does not apply.
	f.clock.Advance(0)
	opt.UpstreamHas = nil
	if p := plan(t, f.collector(opt)); len(p.Remove) != 0 {
		t.Errorf("without an upstream to ask, plan removes %v", names(p.Remove))
	}
}

// A mirrored path used between the plan and the sweep stays.
func TestCollectMirrorRetentionUsedDuring(t *testing.T) {
	f := newFixture(t, ingest.ModeZstd)
	x := f.mirrored("used-during")
	f.clock.Advance(60 * day)
	col := f.collector(Options{Retention: 365 * day, MirrorRetention: 30 * day,
		UpstreamHas: func(context.Context, string) bool { return true }})
	col.afterPlan = func(context.Context) { f.use(x) }
	res := run(t, col)
	if len(res.Remove) != 1 || len(res.Kept) != 1 || res.Kept[0].HashPart != x.HashPart {
		t.Fatalf("planned %v, kept %v; want it planned and kept", names(res.Remove), res.Kept)
	}
	f.requireAlive(x)
	f.requireClean()
}
