package gc

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/nix-cached/cached/ingest"
)

// TestCollectPinned: a pinned closure survives however old.
func TestCollectPinned(t *testing.T) {
	f := newFixture(t, ingest.ModeKeep)
	q := f.node("q")
	p := f.node("p", "q")
	r := f.node("r", "q")
	f.pin("release", p, 0, time.Time{})
	f.clock.Advance(800 * day)
	res := run(t, f.collector(Options{}))
	if got := names(res.Remove); !slices.Equal(got, []string{"r"}) {
		t.Errorf("removed %v, want [r]", got)
	}
	f.requireAlive(p, q)
	f.requireGone(r)
	f.requireClean()
}

// TestCollectPinReplacement: a new pin of a name releases the old path
// unless keep holds it.
func TestCollectPinReplacement(t *testing.T) {
	f := newFixture(t, ingest.ModeZstd)
	var app, lib [5]pushed
	push := func(i int) {
		n := string(rune('0' + i))
		lib[i] = f.node("lib" + n)
		app[i] = f.node("app"+n, "lib"+n)
	}
	for i := 1; i <= 4; i++ {
		push(i)
	}
	f.clock.Advance(400 * day)
	col := f.collector(Options{})

	f.pin("app", app[1], 1, time.Time{})
	f.pin("app", app[2], 1, time.Time{}) // app1 kept as the previous one
	if got := sortedNames(run(t, col).Remove); !slices.Equal(got, []string{"app3", "app4", "lib3", "lib4"}) {
		t.Fatalf("removed %v, want the unpinned app3 and app4 closures", got)
	}
	f.requireAlive(app[1], lib[1], app[2], lib[2])

	push(3)
	push(4)
	f.clock.Advance(400 * day)
	f.pin("app", app[3], 1, time.Time{}) // app2 kept, app1 released
	if got := sortedNames(run(t, col).Remove); !slices.Equal(got, []string{"app1", "app4", "lib1", "lib4"}) {
		t.Fatalf("removed %v, want app1 (released) and app4 (never pinned)", got)
	}
	f.requireAlive(app[2], lib[2], app[3], lib[3])

	push(4)
	f.clock.Advance(400 * day)
	f.pin("app", app[4], 0, time.Time{}) // keep 0: app2 and app3 released
	if got := sortedNames(run(t, col).Remove); !slices.Equal(got, []string{"app2", "app3", "lib2", "lib3"}) {
		t.Fatalf("removed %v, want app2 and app3 with their libs", got)
	}
	f.requireAlive(app[4], lib[4])
	f.requireGone(app[1], lib[1], app[2], lib[2], app[3], lib[3])
	f.requireClean()
}

// TestCollectPinExpiry: an expired pin keeps nothing; what dies only
// because of that says so.
func TestCollectPinExpiry(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, ingest.ModeZstd)
	y := f.node("y")
	x := f.node("x", "y")
	z := f.node("z")
	expires := f.clock.Now().Add(30 * day)
	f.pin("tmp", x, 0, expires)
	cat := f.cat
	col, err := New(cat, f.store, Options{BlobGrace: -1, Retention: 10 * day, Now: f.clock.Now, Holder: "t",
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}

	f.clock.Advance(20 * day)
	if got := names(run(t, col).Remove); !slices.Equal(got, []string{"z"}) {
		t.Fatalf("before expiry removed %v, want [z]", got)
	}
	f.requireAlive(x, y)

	f.clock.Advance(10 * day) // exactly at the expiry: expired
	res := run(t, col)
	if got := names(res.Remove); !slices.Equal(got, []string{"x", "y"}) || res.Removed != 2 {
		t.Fatalf("after expiry planned %v, removed %d, kept %v; want [x y] removed",
			got, res.Removed, names(res.Kept))
	}
	for _, d := range res.Remove {
		want := "pin tmp expired " + expires.UTC().Format(time.DateOnly) + " (unused since " +
			d.LastUsed.UTC().Format(time.DateOnly) + ")"
		if d.Reason != want {
			t.Errorf("reason %q, want %q", d.Reason, want)
		}
	}
	f.requireGone(x, y, z)
	pins, err := f.cat.Pins(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pins) != 0 {
		t.Errorf("the expired pin outlived its path: %+v", pins)
	}
	f.requireClean()
}

// TestCollectExpiredPinRenewed: a path whose pin expired, pinned again
// between the plan and the sweep, is kept.
func TestCollectExpiredPinRenewed(t *testing.T) {
	f := newFixture(t, ingest.ModeZstd)
	x := f.node("x")
	f.pin("tmp", x, 0, f.clock.Now().Add(day))
	f.clock.Advance(400 * day)
	cat := f.cat
	col, err := New(cat, f.store, Options{BlobGrace: -1, Now: f.clock.Now, Holder: "t", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	col.afterPlan = func(context.Context) { f.pin("again", x, 0, time.Time{}) }
	res := run(t, col)
	if got := names(res.Kept); !slices.Equal(got, []string{"x"}) || res.Removed != 0 {
		t.Errorf("kept %v, removed %d; want x kept", got, res.Removed)
	}
	f.requireAlive(x)
	f.requireClean()
}

// TestCollectExpiredPinStillUsed: a path whose pin expired lives on while
// it is used, and an expired pin never decides over a live referrer.
func TestCollectExpiredPinStillUsed(t *testing.T) {
	f := newFixture(t, ingest.ModeZstd)
	y := f.node("y")
	x := f.node("x", "y")
	w := f.node("w", "x")
	f.pin("tmp", x, 0, f.clock.Now().Add(day))
	f.clock.Advance(400 * day)
	f.use(w)
	res := run(t, f.collector(Options{}))
	if len(res.Remove) != 0 {
		t.Errorf("removed %v", names(res.Remove))
	}
	f.requireAlive(w, x, y)
	f.requireClean()
}
