package catalogtest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog"
)

// wantPin is an expected entry of Pins.
type wantPin struct {
	name, seed       string
	created, expires time.Time
	current          bool
}

// checkPins fails the test unless Pins returns exactly want, in order.
func checkPins(t *testing.T, c catalog.Catalog, want ...wantPin) {
	t.Helper()
	got, err := c.Pins(context.Background())
	if err != nil {
		t.Fatalf("Pins: %v", err)
	}
	show := func(ps []catalog.Pin) string {
		var s []string
		for _, p := range ps {
			s = append(s, fmt.Sprintf("%s→%s(current %v)", p.Name, p.StorePath, p.Current))
		}
		return strings.Join(s, ", ")
	}
	if len(got) != len(want) {
		t.Fatalf("Pins = [%s], want %d pins", show(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Name != w.name || g.HashPart != HashPart(w.seed) ||
			g.StorePath != "/nix/store/"+HashPart(w.seed)+"-"+w.seed || g.Current != w.current ||
			!g.CreatedAt.Equal(w.created) || !g.ExpiresAt.Equal(w.expires) {
			t.Errorf("Pins[%d] = %+v, want %s→%s created %v expires %v current %v (all: [%s])",
				i, g, w.name, w.seed, w.created, w.expires, w.current, show(got))
		}
	}
}

func testPins(t *testing.T, c catalog.Catalog) {
	ctx := context.Background()
	for _, seed := range []string{"v1", "v2", "v3", "v4", "v5", "tool"} {
		n := newNAR(seed, at(0))
		publish(t, c, n, newPath(seed, n, "k:1"))
	}
	// Only published paths can be pinned.
	err := c.AddPin(ctx, catalog.Pin{Name: "rel", HashPart: HashPart("absent"), CreatedAt: at(0)}, 0)
	if !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("AddPin(unpublished): error %v, want ErrNotFound", err)
	}
	checkPins(t, c)

	day := at(24 * time.Hour)
	addPin(t, c, "rel", "v1", at(1*time.Minute), time.Time{}, 2)
	addPin(t, c, "zeta", "tool", at(0), day, 0)
	addPin(t, c, "rel", "v2", at(2*time.Minute), time.Time{}, 2)
	addPin(t, c, "rel", "v3", at(3*time.Minute), time.Time{}, 2)
	addPin(t, c, "alpha", "tool", at(0), time.Time{}, 0)
	checkPins(t, c,
		wantPin{"alpha", "tool", at(0), time.Time{}, true},
		wantPin{"rel", "v3", at(3 * time.Minute), time.Time{}, true},
		wantPin{"rel", "v2", at(2 * time.Minute), time.Time{}, false},
		wantPin{"rel", "v1", at(1 * time.Minute), time.Time{}, false},
		wantPin{"zeta", "tool", at(0), day, true})

	// keep 2: the oldest previous pin goes.
	addPin(t, c, "rel", "v4", at(4*time.Minute), time.Time{}, 2)
	checkPins(t, c,
		wantPin{"alpha", "tool", at(0), time.Time{}, true},
		wantPin{"rel", "v4", at(4 * time.Minute), time.Time{}, true},
		wantPin{"rel", "v3", at(3 * time.Minute), time.Time{}, false},
		wantPin{"rel", "v2", at(2 * time.Minute), time.Time{}, false},
		wantPin{"zeta", "tool", at(0), day, true})

	// Pinning a name's path again makes it current without a duplicate.
	addPin(t, c, "rel", "v2", at(5*time.Minute), day, 3)
	checkPins(t, c,
		wantPin{"alpha", "tool", at(0), time.Time{}, true},
		wantPin{"rel", "v2", at(5 * time.Minute), day, true},
		wantPin{"rel", "v4", at(4 * time.Minute), time.Time{}, false},
		wantPin{"rel", "v3", at(3 * time.Minute), time.Time{}, false},
		wantPin{"zeta", "tool", at(0), day, true})

	// keep 0: only the new pin remains.
	addPin(t, c, "rel", "v5", at(6*time.Minute), time.Time{}, 0)
	checkPins(t, c,
		wantPin{"alpha", "tool", at(0), time.Time{}, true},
		wantPin{"rel", "v5", at(6 * time.Minute), time.Time{}, true},
		wantPin{"zeta", "tool", at(0), day, true})
	// The released versions are free to go.
	deletePath(t, c, HashPart("v4"), catalog.DeleteCondition{})

	if err := c.RemovePin(ctx, "rel"); err != nil {
		t.Fatalf("RemovePin(rel): %v", err)
	}
	if err := c.RemovePin(ctx, "rel"); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("RemovePin(rel) again: error %v, want ErrNotFound", err)
	}
	checkPins(t, c,
		wantPin{"alpha", "tool", at(0), time.Time{}, true},
		wantPin{"zeta", "tool", at(0), day, true})
	deletePath(t, c, HashPart("v5"), catalog.DeleteCondition{})
	if _, err := c.DeletePath(ctx, HashPart("tool"), catalog.DeleteCondition{}); !errors.Is(err, catalog.ErrPinned) {
		t.Errorf("DeletePath(pinned twice): error %v, want ErrPinned", err)
	}
}

func testTryLock(t *testing.T, c catalog.Catalog) {
	ctx := context.Background()
	try := func(step, name, holder string, ttl time.Duration, want bool) {
		t.Helper()
		got, err := c.TryLock(ctx, name, holder, ttl)
		if err != nil {
			t.Fatalf("%s: TryLock(%s, %s): %v", step, name, holder, err)
		}
		if got != want {
			t.Errorf("%s: TryLock(%s, %s) = %v, want %v", step, name, holder, got, want)
		}
	}
	unlock := func(name, holder string) {
		t.Helper()
		if err := c.Unlock(ctx, name, holder); err != nil {
			t.Fatalf("Unlock(%s, %s): %v", name, holder, err)
		}
	}
	try("free", "gc", "a", time.Hour, true)
	try("held", "gc", "b", time.Hour, false)
	try("renew", "gc", "a", time.Hour, true)
	try("other name", "sweep", "b", time.Hour, true)
	unlock("gc", "b") // not b's: nothing happens
	try("still held", "gc", "b", time.Hour, false)
	unlock("gc", "a")
	try("released", "gc", "b", time.Hour, true)
	try("taken by b", "gc", "a", time.Hour, false)
	unlock("gc", "b")
	unlock("gc", "b") // not held: nothing happens

	// A lock is held as long as its holder is there, renewed or not: a
	// slow holder is never taken over. (That a holder that is gone holds
	// nothing is tested where a second process can be played.)
	try("expiring", "gc", "a", -time.Second, true)
	try("expired, holder there", "gc", "b", time.Hour, false)
	unlock("gc", "a")
	try("released", "gc", "b", time.Hour, true)
	unlock("gc", "b")
}

// TryLockTakeover checks that a named lock whose holder is gone without
// unlocking (its process killed) is taken at once: open opens the same
// database each time, as another process would, and closes it when the
// test ends (Close twice must be harmless); a Catalog closed without
// Unlock plays the killed holder.
func TryLockTakeover(t *testing.T, open func(t *testing.T) catalog.Catalog) {
	ctx := context.Background()
	first, second := open(t), open(t)
	if ok, err := first.TryLock(ctx, "gc", "host-a:1", time.Hour); err != nil || !ok {
		t.Fatalf("first holder: %v %v", ok, err)
	}
	if ok, err := second.TryLock(ctx, "gc", "host-b:2", time.Hour); err != nil || ok {
		t.Fatalf("second holder while the first lives: %v %v", ok, err)
	}
	if err := first.Close(); err != nil { // dies holding the lock
		t.Fatal(err)
	}
	if ok, err := second.TryLock(ctx, "gc", "host-b:2", time.Hour); err != nil || !ok {
		t.Fatalf("second holder after the first died: %v %v, want the lock at once", ok, err)
	}
	if ok, err := second.TryLock(ctx, "gc", "host-b:2", time.Hour); err != nil || !ok {
		t.Fatalf("renewing: %v %v", ok, err)
	}
	if err := second.Unlock(ctx, "gc", "host-b:2"); err != nil {
		t.Fatal(err)
	}
	third := open(t)
	if ok, err := third.TryLock(ctx, "gc", "host-c:3", time.Hour); err != nil || !ok {
		t.Fatalf("after an unlock: %v %v", ok, err)
	}
}

func testGCRuns(t *testing.T, c catalog.Catalog) {
	ctx := context.Background()
	if _, err := c.LastGCRun(ctx); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("LastGCRun with no runs: error %v, want ErrNotFound", err)
	}
	newer := catalog.GCRun{
		Holder: "host-a:12", Started: at(2 * time.Hour), Finished: at(2*time.Hour + time.Minute),
		PathsRemoved: 3, NARsRemoved: 2, BytesRemoved: 1 << 33, LivePaths: 100, LiveBytes: 1 << 35,
	}
	older := catalog.GCRun{
		Holder: "host-b:34", Started: at(time.Hour), Finished: at(time.Hour + time.Second),
		PathsRemoved: 1, Error: "gc: deleting nar/x.nar.zst: connection refused",
	}
	for i, r := range []catalog.GCRun{older, newer} {
		if err := c.RecordGCRun(ctx, r); err != nil {
			t.Fatalf("RecordGCRun: %v", err)
		}
		got, err := c.LastGCRun(ctx)
		if err != nil {
			t.Fatalf("LastGCRun: %v", err)
		}
		if !sameRun(got, r) {
			t.Errorf("LastGCRun after %d runs = %+v, want %+v", i+1, got, r)
		}
	}
	// A run recorded late that started earlier is not the last one.
	if err := c.RecordGCRun(ctx, catalog.GCRun{Holder: "late", Started: at(0), Finished: at(3 * time.Hour)}); err != nil {
		t.Fatalf("RecordGCRun: %v", err)
	}
	if got, err := c.LastGCRun(ctx); err != nil || !sameRun(got, newer) {
		t.Errorf("LastGCRun after a late record = %+v, %v; want %+v", got, err, newer)
	}
}

// sameRun reports whether two GC records are equal.
func sameRun(a, b catalog.GCRun) bool {
	if !a.Started.Equal(b.Started) || !a.Finished.Equal(b.Finished) {
		return false
	}
	a.Started, a.Finished, b.Started, b.Finished = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return a == b
}
