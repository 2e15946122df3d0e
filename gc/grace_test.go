package gc

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog"
)

// deleteClock notes when each path deletion committed.
type deleteClock struct {
	catalog.Catalog
	mu sync.Mutex
	at map[string]time.Time
}

func (d *deleteClock) DeletePaths(ctx context.Context, hashes []string, cond catalog.DeleteCondition) ([]catalog.DeleteResult, error) {
	res, err := d.Catalog.DeletePaths(ctx, hashes, cond)
	d.note(hashes)
	return res, err
}

func (d *deleteClock) DeletePath(ctx context.Context, hash string, cond catalog.DeleteCondition) (catalog.Deleted, error) {
	del, err := d.Catalog.DeletePath(ctx, hash, cond)
	d.note([]string{hash})
	return del, err
}

func (d *deleteClock) note(hashes []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, h := range hashes {
		d.at[h] = time.Now()
	}
}

// Blobs outlive their paths by BlobGrace, whether a collection or a
// removal deleted them, so that a narinfo another process still serves
// from memory (catalog/infocache) never names a missing NAR.
func TestBlobGrace(t *testing.T) {
	const grace = 300 * time.Millisecond
	for _, how := range []string{"collect", "remove"} {
		t.Run(how, func(t *testing.T) {
			f := newFixture(t, "zstd")
			old := f.node("old")
			f.clock.Advance(400 * day)
			f.node("new")
			clock := &deleteClock{Catalog: f.cat, at: map[string]time.Time{}}
			col, err := New(clock, f.store, Options{BlobGrace: grace, Now: f.clock.Now, Holder: "t"})
			if err != nil {
				t.Fatal(err)
			}
			var blobGone time.Time
			col.beforeNARDelete = func(string) { blobGone = time.Now() }
			if how == "collect" {
				if res := run(t, col); res.Removed != 1 || res.NARsRemoved != 1 {
					t.Fatalf("removed %d paths and %d NARs, want 1 and 1", res.Removed, res.NARsRemoved)
				}
			} else if _, err := col.RemovePath(context.Background(), old.HashPart, false); err != nil {
				t.Fatal(err)
			}
			f.requireGone(old)
			pathGone, ok := clock.at[old.HashPart]
			if !ok || blobGone.IsZero() {
				t.Fatalf("path deleted at %v, blob at %v", pathGone, blobGone)
			}
			if waited := blobGone.Sub(pathGone); waited < grace {
				t.Errorf("the NAR went %v after its path, before the %v grace", waited, grace)
			}
		})
	}
}

// A collection cancelled during the grace leaves the NARs deleting; the
// next run finishes them. (The build logs of those paths stay: nothing
// records them, as after a crash at the same point.)
func TestBlobGraceCancelled(t *testing.T) {
	f := newFixture(t, "zstd")
	old := f.node("old")
	f.clock.Advance(400 * day)
	col := f.collector(Options{BlobGrace: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := col.Run(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run = %v, want the deadline", err)
	}
	if !f.stored(old.NARKey) {
		t.Fatal("the NAR was deleted within the grace")
	}
	res := run(t, f.collector(Options{BlobGrace: -1}))
	if res.NARsRemoved != 1 {
		t.Errorf("the next run removed %d NARs, want the 1 left deleting", res.NARsRemoved)
	}
	if f.stored(old.NARKey) || f.stored(old.Listing) {
		t.Error("the NAR or its listing is still stored after the next run")
	}
}
