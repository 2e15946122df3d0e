package gc

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/catalog/sqlite"
	"github.com/nix-cached/cached/ingest"
)

// TestCollectRacingPush: what becomes live between the plan and the sweep
// is kept, and closures published meanwhile stay whole.
func TestCollectRacingPush(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// during runs between the plan and the sweep; it returns the
		// names that must then be kept.
		during func(f *fixture, ps map[string]pushed) []string
	}{
		{"new referrer", func(f *fixture, ps map[string]pushed) []string {
			ps["new"] = f.node("new", "d")
			return []string{"d", "e"}
		}},
		{"used", func(f *fixture, ps map[string]pushed) []string {
			f.use(ps["e"])
			return []string{"e"}
		}},
		{"pushed again", func(f *fixture, ps map[string]pushed) []string {
			ps["d"] = f.node("d", "e")
			return []string{"d", "e"}
		}},
		{"pinned", func(f *fixture, ps map[string]pushed) []string {
			f.pin("late", ps["d"], 0, f.clock.Now().Add(day))
			return []string{"d", "e"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, ingest.ModeZstd)
			ps := map[string]pushed{"e": f.node("e")}
			ps["d"] = f.node("d", "e")
			f.clock.Advance(400 * day)
			col := f.collector(Options{})
			var kept []string
			col.afterPlan = func(context.Context) { kept = tt.during(f, ps) }
			res := run(t, col)
			if got := names(res.Remove); !slices.Equal(got, []string{"d", "e"}) {
				t.Fatalf("planned %v, want [d e]", got)
			}
			if got := sortedNames(res.Kept); !slices.Equal(got, kept) {
				t.Errorf("kept %v, want %v", got, kept)
			}
			if res.Removed != 2-len(kept) {
				t.Errorf("removed %d paths, want %d", res.Removed, 2-len(kept))
			}
			for name, p := range ps {
				if slices.Contains(kept, name) || name == "new" {
					f.requireAlive(p)
				} else {
					f.requireGone(p)
				}
			}
			f.requireClean()
			if _, err := f.cat.LastGCRun(ctx); err != nil {
				t.Errorf("no run recorded: %v", err)
			}
		})
	}
}

// TestCollectPublishedAfterPlan: a dry run, then a push referencing a dead
// path at the same instant, then the run: the new closure stays whole.
func TestCollectPublishedAfterPlan(t *testing.T) {
	f := newFixture(t, ingest.ModeZstd)
	e := f.node("e")
	d := f.node("d", "e")
	f.clock.Advance(400 * day)
	col := f.collector(Options{})
	if got := names(plan(t, col).Remove); !slices.Equal(got, []string{"d", "e"}) {
		t.Fatalf("planned %v", got)
	}
	n := f.node("new", "d")
	res := run(t, col)
	if len(res.Remove) != 0 || res.LivePaths != 3 {
		t.Errorf("removed %v, %d live", names(res.Remove), res.LivePaths)
	}
	f.requireAlive(n, d, e)
	f.requireClean()
}

// TestCollectNARUploadedDuringRun: the NAR of a dead path, uploaded again
// (unclaimed) during the collection, is not removed with the path: a
// narinfo can still claim it.
func TestCollectNARUploadedDuringRun(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, ingest.ModeZstd)
	text := []byte("contents shared over time")
	old := f.nodeWith("old", text)
	f.clock.Advance(400 * day)
	col := f.collector(Options{})
	var ni string
	col.afterPlan = func(context.Context) {
		n, info := f.upload(storePath("successor"), ingest.CompXZ, text)
		if n.Key != old.NARKey {
			t.Errorf("the upload is stored as %s, not %s", n.Key, old.NARKey)
		}
		ni = info.String()
	}
	res := run(t, col)
	if res.Removed != 1 || res.NARsRemoved != 0 {
		t.Errorf("removed %d paths and %d NARs, want the path alone", res.Removed, res.NARsRemoved)
	}
	if _, err := f.cat.NarInfo(ctx, old.HashPart); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("the dead path is still published: %v", err)
	}
	if !f.stored(old.NARKey) || !f.stored(old.Listing) {
		t.Fatalf("the NAR uploaded during the run was deleted")
	}
	f.requireClean()
	if _, err := f.ing.NarInfo(ctx, storePath("successor")[:32], []byte(ni)); err != nil {
		t.Fatalf("publishing the uploaded NAR: %v", err)
	}
	f.requireClean()
}

// TestCollectLocked: only one collection runs at a time, also across
// catalog handles (processes) on one database.
func TestCollectLocked(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, ingest.ModeZstd)
	d := f.node("d")
	f.clock.Advance(400 * day)
	cat2, err := sqlite.Open(ctx, f.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer cat2.Close()
	col := f.collector(Options{Holder: "host-a:1"})
	other, err := New(cat2, f.store, Options{BlobGrace: -1, Holder: "host-b:2", Now: f.clock.Now, Logger: col.opt.Logger})
	if err != nil {
		t.Fatal(err)
	}
	same := f.collector(Options{Holder: "host-a:1"}) // another collector of this process

	col.afterPlan = func(context.Context) {
		if _, err := other.Run(ctx); !errors.Is(err, ErrLocked) {
			t.Errorf("a second collection on another handle: %v, want ErrLocked", err)
		}
		if _, err := other.SweepUnclaimed(ctx); !errors.Is(err, ErrLocked) {
			t.Errorf("a sweep during a collection: %v, want ErrLocked", err)
		}
		if _, err := other.RemovePath(ctx, d.HashPart, true); !errors.Is(err, ErrLocked) {
			t.Errorf("a path removal during a collection: %v, want ErrLocked", err)
		}
		if _, err := same.Run(ctx); !errors.Is(err, ErrLocked) {
			t.Errorf("a second collection in the same process: %v, want ErrLocked", err)
		}
		if _, err := other.Plan(ctx); err != nil {
			t.Errorf("a dry run needs no lock, but: %v", err)
		}
	}
	if res := run(t, col); res.Removed != 1 {
		t.Errorf("removed %d paths, want 1", res.Removed)
	}
	col.afterPlan = nil
	if _, err := other.Run(ctx); err != nil {
		t.Errorf("after the first collection, another: %v", err)
	}
	// A lock held elsewhere (a process that is still running).
	if ok, err := cat2.TryLock(ctx, lockName, "host-c:3", defaultLockTTL); err != nil || !ok {
		t.Fatalf("TryLock: %v, %v", ok, err)
	}
	if _, err := col.Run(ctx); !errors.Is(err, ErrLocked) {
		t.Errorf("with the lock held elsewhere: %v, want ErrLocked", err)
	}
	if err := cat2.Unlock(ctx, lockName, "host-c:3"); err != nil {
		t.Fatal(err)
	}
	run(t, col)
	f.requireClean()
}
