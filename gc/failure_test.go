package gc

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/ingest"
)

// TestCollectStorageFailure: a failed blob delete ends the run with the
// cache consistent. The paths of the batch are gone from the catalog, the
// other blobs of the batch are still deleted (nothing would remember an
// orphan build log), and the next run finishes the NAR left deleting.
func TestCollectStorageFailure(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, ingest.ModeZstd)
	d3 := f.node("d3")
	d2 := f.node("d2", "d3")
	d1 := f.node("d1", "d2")
	f.clock.Advance(400 * day)
	col := f.collector(Options{})
	f.blobs.setFailDelete(func(key string) bool { return key == d2.NARKey })

	res, err := col.Run(ctx)
	if !errors.Is(err, errInjected) || !strings.Contains(err.Error(), d2.NARKey) {
		t.Fatalf("Run: %v, want the injected failure naming %s", err, d2.NARKey)
	}
	if res.Removed != 3 || res.NARsRemoved != 2 {
		t.Errorf("removed %d paths and %d NARs before the failure, want 3 and 2", res.Removed, res.NARsRemoved)
	}
	last, lerr := f.cat.LastGCRun(ctx)
	if lerr != nil {
		t.Fatal(lerr)
	}
	if !strings.Contains(last.Error, "injected storage failure") || last.PathsRemoved != 3 || strings.Contains(last.Error, "\n") {
		t.Errorf("recorded run %+v", last)
	}
	f.requireGone(d1, d3)
	if !f.stored(d2.NARKey) {
		t.Error("the NAR whose delete failed is gone")
	}
	rep, err := Verify(ctx, f.cat, f.store, VerifyOptions{Contents: true})
	if err != nil || len(rep.Problems) != 0 {
		t.Fatalf("after the failure: verify %v, %v", rep.Problems, err)
	}
	deleting, err := f.cat.DeletingNARs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(deleting) != 1 || deleting[0].Key != d2.NARKey {
		t.Fatalf("deleting NARs %+v, want %s", deleting, d2.NARKey)
	}

	f.blobs.setFailDelete(nil)
	res = run(t, col)
	if len(res.Remove) != 0 || res.NARsRemoved != 1 {
		t.Errorf("second run removed %v and %d NARs, want nothing and d2's leftover NAR", names(res.Remove), res.NARsRemoved)
	}
	f.requireGone(d1, d2, d3)
	f.requireClean()
}

// TestCollectListingFailure: a failure after the NAR blob went leaves the
// record deleting; the next run deletes the listing and drops it.
func TestCollectListingFailure(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, ingest.ModeKeep)
	d := f.node("d")
	f.clock.Advance(400 * day)
	col := f.collector(Options{})
	f.blobs.setFailDelete(func(key string) bool { return key == d.Listing })
	if _, err := col.Run(ctx); !errors.Is(err, errInjected) {
		t.Fatalf("Run: %v, want the injected failure", err)
	}
	if f.stored(d.NARKey) || !f.stored(d.Listing) {
		t.Fatalf("NAR stored %v, listing stored %v; want only the listing", f.stored(d.NARKey), f.stored(d.Listing))
	}
	f.blobs.setFailDelete(nil)
	if res := run(t, col); res.NARsRemoved != 1 {
		t.Errorf("the leftover NAR was not finished: %+v", res)
	}
	f.requireGone(d)
	f.requireClean()
}

// failingCatalog fails one method with a generic error.
type failingCatalog struct {
	catalog.Catalog
	op string
}

var errCatalog = errors.New("database is on fire")

func (c failingCatalog) WalkGraph(ctx context.Context, fn func(catalog.GraphNode) error) error {
	if c.op == "walk" {
		return errCatalog
	}
	if c.op == "walk-late" {
		n := 0
		return c.Catalog.WalkGraph(ctx, func(g catalog.GraphNode) error {
			if n++; n > 1 {
				return errCatalog
			}
			return fn(g)
		})
	}
	return c.Catalog.WalkGraph(ctx, fn)
}

func (c failingCatalog) Pins(ctx context.Context) ([]catalog.Pin, error) {
	if c.op == "pins" {
		return nil, errCatalog
	}
	return c.Catalog.Pins(ctx)
}

func (c failingCatalog) DeletePath(ctx context.Context, hashPart string, cond catalog.DeleteCondition) (catalog.Deleted, error) {
	if c.op == "delete" {
		return catalog.Deleted{}, errCatalog
	}
	return c.Catalog.DeletePath(ctx, hashPart, cond)
}

func (c failingCatalog) DeletePaths(ctx context.Context, hashParts []string, cond catalog.DeleteCondition) ([]catalog.DeleteResult, error) {
	if c.op == "delete" {
		return nil, errCatalog
	}
	return c.Catalog.DeletePaths(ctx, hashParts, cond)
}

func (c failingCatalog) BlobInUse(ctx context.Context, key string) (bool, error) {
	if c.op == "inuse" {
		return false, errCatalog
	}
	return c.Catalog.BlobInUse(ctx, key)
}

func (c failingCatalog) DeletingNARs(ctx context.Context) ([]catalog.NAR, error) {
	if c.op == "deleting" {
		return nil, errCatalog
	}
	return c.Catalog.DeletingNARs(ctx)
}

func (c failingCatalog) TryLock(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if c.op == "lock" {
		return false, errCatalog
	}
	return c.Catalog.TryLock(ctx, name, holder, ttl)
}

// TestCollectCouldNotTell: a catalog failure while deciding or deleting
// ends the run; nothing is removed on a guess.
func TestCollectCouldNotTell(t *testing.T) {
	tests := []struct {
		op       string
		removed  []string // paths gone after the failed run
		recorded bool     // whether the run is recorded
	}{
		{"walk", nil, true},
		{"walk-late", nil, true},
		{"pins", nil, true},
		{"delete", nil, true},
		{"inuse", []string{"d", "e"}, true}, // the batch went, its NARs stay deleting
		{"deleting", []string{"d", "e"}, true},
		{"lock", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.op, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, ingest.ModeZstd)
			e := f.node("e")
			d := f.node("d", "e")
			f.clock.Advance(400 * day)
			col, err := New(failingCatalog{f.cat, tt.op}, f.store, Options{BlobGrace: -1, Now: f.clock.Now, Holder: "t", Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := col.Run(ctx); !errors.Is(err, errCatalog) {
				t.Fatalf("Run: %v, want %v", err, errCatalog)
			}
			last, err := f.cat.LastGCRun(ctx)
			switch {
			case !tt.recorded && !errors.Is(err, catalog.ErrNotFound):
				t.Errorf("a run that never started was recorded: %+v, %v", last, err)
			case tt.recorded && (err != nil || !strings.Contains(last.Error, errCatalog.Error())):
				t.Errorf("recorded run %+v, %v", last, err)
			}
			if got := f.publishedNames(); len(got)+len(tt.removed) != 2 {
				t.Errorf("published after the failure: %v", got)
			}
			for _, p := range []pushed{d, e} {
				if !slices.Contains(tt.removed, p.Name) {
					f.requireAlive(p)
				}
			}
			rep, err := Verify(ctx, f.cat, f.store, VerifyOptions{Contents: true})
			if err != nil || len(rep.Problems) != 0 {
				t.Errorf("verify after the failure: %v, %v", rep.Problems, err)
			}
			// A healthy collector finishes the job.
			run(t, f.collector(Options{}))
			f.requireGone(d, e)
			f.requireClean()
		})
	}
}

// TestCollectCanceled: a cancelled context stops the run before it
// deletes anything.
func TestCollectCanceled(t *testing.T) {
	f := newFixture(t, ingest.ModeZstd)
	d := f.node("d")
	f.clock.Advance(400 * day)
	ctx, cancel := context.WithCancel(context.Background())
	col := f.collector(Options{})
	col.afterPlan = func(context.Context) { cancel() }
	if _, err := col.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v, want %v", err, context.Canceled)
	}
	f.requireAlive(d)
	last, err := f.cat.LastGCRun(context.Background())
	if err != nil || last.Error == "" {
		t.Errorf("the cancelled run was not recorded as failed: %+v, %v", last, err)
	}
	f.requireClean()
}

// lockStealer lets the first TryLock through and refuses renewals, as if
// another process had taken the lock over.
type lockStealer struct {
	catalog.Catalog
	calls int
}

func (c *lockStealer) TryLock(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	c.calls++
	if c.calls > 1 {
		return false, nil
	}
	return c.Catalog.TryLock(ctx, name, holder, ttl)
}

// TestCollectLockLost: a collection whose lock cannot be renewed stops
// before it deletes anything more.
func TestCollectLockLost(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, ingest.ModeZstd)
	d := f.node("d")
	f.clock.Advance(400 * day)
	col, err := New(&lockStealer{Catalog: f.cat}, f.store, Options{BlobGrace: -1, Now: f.clock.Now, Holder: "t", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	col.lockTTL = 30 * time.Millisecond // renewed every 10 ms
	col.afterPlan = func(ctx context.Context) {
		select {
		case <-ctx.Done():
		case <-time.After(time.Minute):
			t.Error("the failed renewal did not stop the collection")
		}
	}
	if _, err := col.Run(ctx); !errors.Is(err, ErrLockLost) {
		t.Fatalf("Run: %v, want ErrLockLost", err)
	}
	f.requireAlive(d)
	last, err := f.cat.LastGCRun(ctx)
	if err != nil || !strings.Contains(last.Error, ErrLockLost.Error()) {
		t.Errorf("recorded run %+v, %v", last, err)
	}
	f.requireClean()
}

// youngUnused shows every path as never used, as a catalog whose LastUsed
// lags behind publication could.
type youngUnused struct{ catalog.Catalog }

func (c youngUnused) WalkGraph(ctx context.Context, fn func(catalog.GraphNode) error) error {
	return c.Catalog.WalkGraph(ctx, func(n catalog.GraphNode) error {
		n.LastUsed = time.Time{}
		return fn(n)
	})
}

// TestCollectPublishedDuringRun: a path published at or after the start
// of a collection is never removed by it, whatever its last use says.
func TestCollectPublishedDuringRun(t *testing.T) {
	f := newFixture(t, ingest.ModeZstd)
	old := f.node("old")
	f.clock.Advance(400 * day)
	young := f.node("young", "old")
	col, err := New(youngUnused{f.cat}, f.store, Options{BlobGrace: -1, Now: f.clock.Now, Holder: "t", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	res := run(t, col)
	if len(res.Remove) != 0 || res.LivePaths != 2 {
		t.Errorf("removed %v, kept %d", names(res.Remove), res.LivePaths)
	}
	f.requireAlive(old, young)
	f.requireClean()
}
