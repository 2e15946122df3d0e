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

func TestRemovePath(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, ingest.ModeZstd)
	c := f.node("c")
	b := f.node("b", "c")
	a := f.node("a", "b")
	a2 := f.node("a2", "b", "a2")
	x := f.node("x", "a2")
	p := f.node("p", "c")
	other := f.node("other")
	f.pin("release", p, 0, time.Time{})
	f.pin("x", x, 0, time.Time{})
	col := f.collector(Options{})

	// Refusals name the reason and remove nothing.
	_, err := col.RemovePath(ctx, b.HashPart, false)
	if !errors.Is(err, catalog.ErrReferenced) || !strings.Contains(err.Error(), a.StorePath) ||
		!strings.Contains(err.Error(), a2.StorePath) {
		t.Errorf("removing a referenced path: %v, want ErrReferenced naming %s and %s", err, a.StorePath, a2.StorePath)
	}
	if _, err := col.RemovePath(ctx, p.HashPart, false); !errors.Is(err, catalog.ErrPinned) {
		t.Errorf("removing a pinned path: %v, want ErrPinned", err)
	}
	if _, err := col.RemovePath(ctx, storePath("ghost")[:32], false); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("removing an absent path: %v, want ErrNotFound", err)
	}
	if _, err := col.RemovePath(ctx, storePath("ghost")[:32], true); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("force-removing an absent path: %v, want ErrNotFound", err)
	}
	f.requireAlive(a, a2, b, c, p, x, other)

	// A path nothing references goes alone.
	size := f.nar(a.Path).FileSize
	gone, err := col.RemovePath(ctx, a.HashPart, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(gone); !slices.Equal(got, []string{"a"}) || gone[0].FileSize != size ||
		gone[0].Reason != "removed on request" || gone[0].StorePath != a.StorePath {
		t.Errorf("removed %+v, want a with %d bytes", gone, size)
	}
	f.requireGone(a)
	f.requireAlive(b, c)
	f.requireClean()

	// Forced: everything that depends on b goes first, pins included.
	gone, err = col.RemovePath(ctx, b.HashPart, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(gone); !slices.Equal(got, []string{"x", "a2", "b"}) {
		t.Errorf("forced removal removed %v, want [x a2 b] in that order", got)
	}
	for _, d := range gone[:2] {
		if want := "depends on " + b.StorePath + ", removed on request"; d.Reason != want {
			t.Errorf("reason %q, want %q", d.Reason, want)
		}
	}
	f.requireGone(x, a2, b)
	f.requireAlive(c, p, other)
	pins, err := f.cat.Pins(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pins) != 1 || pins[0].Name != "release" {
		t.Errorf("pins after the forced removal: %+v, want release alone", pins)
	}
	f.requireClean()

	// Forced, a pinned path goes with its pin.
	if gone, err = col.RemovePath(ctx, p.HashPart, true); err != nil || len(gone) != 1 {
		t.Fatalf("forced removal of a pinned path: %v, %v", gone, err)
	}
	f.requireGone(p)
	f.requireAlive(c, other)
	if pins, err = f.cat.Pins(ctx); err != nil || len(pins) != 0 {
		t.Errorf("pins left: %+v, %v", pins, err)
	}
	f.requireClean()
}

// TestRemovePathSharedNAR: removing a path whose NAR another path names
// keeps the NAR.
func TestRemovePathSharedNAR(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, ingest.ModeZstd)
	s1 := f.nodeWith("s1", []byte("same"))
	s2 := f.nodeWith("s2", []byte("same"))
	size := f.nar(s1.Path).FileSize
	gone, err := f.collector(Options{}).RemovePath(ctx, s2.HashPart, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(gone) != 1 || gone[0].FileSize != size {
		t.Errorf("removed %+v, want s2 with its NAR's size %d", gone, size)
	}
	f.requireAlive(s1)
	f.requireClean()
}

// racingReferrer publishes a new referrer of a path the first time the
// referrers of that path are asked for, as a push racing `path rm --force`.
type racingReferrer struct {
	catalog.Catalog
	target string
	push   func()
	done   bool
}

func (c *racingReferrer) Referrers(ctx context.Context, hashPart string) ([]string, error) {
	refs, err := c.Catalog.Referrers(ctx, hashPart)
	if hashPart == c.target && !c.done {
		c.done = true
		c.push()
	}
	return refs, err
}

// TestRemovePathRacingPush: a referrer published while a forced removal
// runs is removed too, so no closure breaks.
func TestRemovePathRacingPush(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, ingest.ModeZstd)
	b := f.node("b")
	a := f.node("a", "b")
	var late pushed
	cat := &racingReferrer{Catalog: f.cat, target: b.HashPart, push: func() { late = f.node("late", "b") }}
	col, err := New(cat, f.store, Options{BlobGrace: -1, Now: f.clock.Now, Holder: "t", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	gone, err := col.RemovePath(ctx, b.HashPart, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := sortedNames(gone); !slices.Equal(got, []string{"a", "b", "late"}) {
		t.Errorf("removed %v, want a, b and the late referrer", got)
	}
	f.requireGone(a, b, late)
	f.requireClean()
}
