package postgres

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/internal/pgtest"
)

// raceRounds is how many times each race is run. Every round starts both
// sides at once, so both orders and real interleavings occur.
const raceRounds = 150

// twoReplicas opens two catalogs, with separate pools, on one new
// database: two replicas of the server.
func twoReplicas(t *testing.T) (*Catalog, *Catalog) {
	t.Helper()
	url := pgtest.Shared(t).NewDatabase(t)
	return openURL(t, url), openURL(t, url)
}

// outcomes counts how rounds ended, for the log and for checking that
// both orders were seen.
type outcomes map[string]int

// seenBoth fails the test unless both named outcomes happened: a race
// that always ends the same way tests one order only.
func (o outcomes) seenBoth(t *testing.T, first, second string) {
	t.Helper()
	t.Logf("outcomes: %v", map[string]int(o))
	if o[first] == 0 || o[second] == 0 {
		t.Logf("only one order was seen in %d rounds; the other was not exercised", raceRounds)
	}
}

// TestRacePublishDeleteReference publishes a path referencing another
// while that other is deleted: either the reference wins (the deletion is
// refused) or the deletion does (the publication misses a reference),
// never both.
func TestRacePublishDeleteReference(t *testing.T) {
	a, b := twoReplicas(t)
	racePublishDeleteReference(t, a, b)
}

// TestRaceStricterDefaultIsolation runs the race above on connections
// whose default isolation is REPEATABLE READ, under which taking a lock
// and then reading would read an older snapshot.
func TestRaceStricterDefaultIsolation(t *testing.T) {
	url := pgtest.Shared(t).NewDatabase(t) + "&default_transaction_isolation=repeatable%20read"
	a, b := openURL(t, url), openURL(t, url)
	var level string
	must(t, "SHOW", a.pool.QueryRow(context.Background(), `SHOW default_transaction_isolation`).Scan(&level))
	if level != "repeatable read" {
		t.Fatalf("default_transaction_isolation = %q, want repeatable read", level)
	}
	racePublishDeleteReference(t, a, b)
}

// racePublishDeleteReference runs the reference race between a and b.
func racePublishDeleteReference(t *testing.T, a, b *Catalog) {
	ctx := context.Background()
	seen := outcomes{}
	for i := range raceRounds {
		depNAR, appNAR := newNAR(fmt.Sprint("dep", i), t0), newNAR(fmt.Sprint("app", i), t0)
		dep := newPath(fmt.Sprint("dep", i), depNAR)
		app := newPath(fmt.Sprint("app", i), appNAR, fmt.Sprint("dep", i))
		publish(t, a, depNAR, dep)
		must(t, "PutNAR", a.PutNAR(ctx, appNAR))

		var pubErr, delErr error
		race(func() { pubErr = a.Publish(ctx, app, catalog.PublishOptions{}) },
			func() { _, delErr = b.DeletePath(ctx, dep.HashPart, catalog.DeleteCondition{}) })
		switch {
		case pubErr == nil && errors.Is(delErr, catalog.ErrReferenced):
			seen["reference first"]++
			checkPublished(t, b, dep.HashPart, app.HashPart)
		case delErr == nil && errors.Is(pubErr, catalog.ErrMissingReferences):
			seen["deletion first"]++
			checkGone(t, b, dep.HashPart, app.HashPart)
		default:
			t.Fatalf("round %d: Publish: %v; DeletePath: %v", i, pubErr, delErr)
		}
	}
	seen.seenBoth(t, "reference first", "deletion first")
}

// TestRacePublishDeletePaths is the race above against a batch deletion,
// which locks its paths up front.
func TestRacePublishDeletePaths(t *testing.T) {
	a, b := twoReplicas(t)
	ctx := context.Background()
	seen := outcomes{}
	for i := range raceRounds {
		var batch []string
		for j := range 3 {
			n := newNAR(fmt.Sprint("batch", i, "-", j), t0)
			p := newPath(fmt.Sprint("batch", i, "-", j), n)
			publish(t, a, n, p)
			batch = append(batch, p.HashPart)
		}
		appNAR := newNAR(fmt.Sprint("app", i), t0)
		app := newPath(fmt.Sprint("app", i), appNAR, fmt.Sprint("batch", i, "-", 1))
		must(t, "PutNAR", a.PutNAR(ctx, appNAR))

		var pubErr, delErr error
		var res []catalog.DeleteResult
		race(func() { pubErr = a.Publish(ctx, app, catalog.PublishOptions{}) },
			func() { res, delErr = b.DeletePaths(ctx, batch, catalog.DeleteCondition{}) })
		if delErr != nil || len(res) != 3 || res[0].Err != nil || res[2].Err != nil {
			t.Fatalf("round %d: DeletePaths = %v, %v", i, res, delErr)
		}
		switch {
		case pubErr == nil && errors.Is(res[1].Err, catalog.ErrReferenced):
			seen["reference first"]++
			checkPublished(t, b, batch[1], app.HashPart)
		case res[1].Err == nil && errors.Is(pubErr, catalog.ErrMissingReferences):
			seen["deletion first"]++
			checkGone(t, b, batch[1], app.HashPart)
		default:
			t.Fatalf("round %d: Publish: %v; DeletePaths: %v", i, pubErr, res[1].Err)
		}
	}
	seen.seenBoth(t, "reference first", "deletion first")
}

// TestRaceAddPinDeletePath pins a path while it is deleted: either the pin
// is there and the path stays, or the path is gone and the pin refused.
func TestRaceAddPinDeletePath(t *testing.T) {
	a, b := twoReplicas(t)
	ctx := context.Background()
	seen := outcomes{}
	for i := range raceRounds {
		n := newNAR(fmt.Sprint("pinned", i), t0)
		p := newPath(fmt.Sprint("pinned", i), n)
		publish(t, a, n, p)
		pin := catalog.Pin{Name: fmt.Sprint("release-", i), HashPart: p.HashPart, CreatedAt: t0}
		var pinErr, delErr error
		race(func() { pinErr = a.AddPin(ctx, pin, 0) },
			func() { _, delErr = b.DeletePath(ctx, p.HashPart, catalog.DeleteCondition{}) })
		switch {
		case pinErr == nil && errors.Is(delErr, catalog.ErrPinned):
			seen["pin first"]++
			checkPublished(t, b, p.HashPart)
		case delErr == nil && errors.Is(pinErr, catalog.ErrNotFound):
			seen["deletion first"]++
			checkGone(t, b, p.HashPart)
		default:
			t.Fatalf("round %d: AddPin: %v; DeletePath: %v", i, pinErr, delErr)
		}
	}
	seen.seenBoth(t, "pin first", "deletion first")
}

// checkPublished fails the test unless every hash part is published.
func checkPublished(t *testing.T, c catalog.Catalog, hashParts ...string) {
	t.Helper()
	for _, h := range hashParts {
		if _, err := c.NarInfo(context.Background(), h); err != nil {
			t.Fatalf("NarInfo(%s): %v, want it published", h, err)
		}
	}
}

// checkGone fails the test unless no hash part is published.
func checkGone(t *testing.T, c catalog.Catalog, hashParts ...string) {
	t.Helper()
	for _, h := range hashParts {
		if _, err := c.NarInfo(context.Background(), h); !errors.Is(err, catalog.ErrNotFound) {
			t.Fatalf("NarInfo(%s): %v, want ErrNotFound", h, err)
		}
	}
}

// TestRaceBeginNARMarkDeleting begins an upload of an unclaimed NAR while
// the lease sweep marks it deleting: either the upload renews the lease
// (the mark is refused) or the mark wins (the upload is busy), never both.
func TestRaceBeginNARMarkDeleting(t *testing.T) {
	a, b := twoReplicas(t)
	ctx := context.Background()
	seen := outcomes{}
	before := t0.Add(time.Hour)
	for i := range raceRounds {
		n := newNAR(fmt.Sprint("leased", i), t0)
		must(t, "PutNAR", a.PutNAR(ctx, n))
		var beginErr, markErr error
		var marked bool
		race(func() { beginErr = a.BeginNAR(ctx, n.Key, n.ListingKey, t0.Add(2*time.Hour)) },
			func() { _, marked, markErr = b.MarkNARDeleting(ctx, n.Key, before) })
		must(t, "MarkNARDeleting", markErr)
		switch {
		case beginErr == nil && !marked:
			seen["upload first"]++
			checkInUse(t, b, n.Key, true)
		case errors.Is(beginErr, catalog.ErrBusy) && marked:
			seen["deletion first"]++
			checkInUse(t, b, n.Key, false)
		default:
			t.Fatalf("round %d: BeginNAR: %v; MarkNARDeleting: %v", i, beginErr, marked)
		}
	}
	seen.seenBoth(t, "upload first", "deletion first")
}

// TestRaceBeginNARSharedListing begins the upload of a new NAR whose
// listing is the listing of an unclaimed NAR being marked deleting, as the
// collector does before it asks whether the listing is still in use: when
// both succeed, the collector must see the upload's claim on the listing,
// or it would delete a blob the upload has just put in place.
func TestRaceBeginNARSharedListing(t *testing.T) {
	a, b := twoReplicas(t)
	ctx := context.Background()
	seen := outcomes{}
	before := t0.Add(time.Hour)
	for i := range raceRounds {
		old := newNAR(fmt.Sprint("old", i), t0)
		must(t, "PutNAR", a.PutNAR(ctx, old))
		fresh := newNAR(fmt.Sprint("fresh", i), t0.Add(2*time.Hour))
		fresh.ListingKey = old.ListingKey // same contents, other compression
		var beginErr, markErr, useErr error
		var marked, inUse bool
		race(func() { beginErr = a.BeginNAR(ctx, fresh.Key, fresh.ListingKey, fresh.CreatedAt) },
			func() {
				if _, marked, markErr = b.MarkNARDeleting(ctx, old.Key, before); marked {
					inUse, useErr = b.BlobInUse(ctx, old.ListingKey)
				}
			})
		must(t, "MarkNARDeleting", markErr)
		must(t, "BlobInUse", useErr)
		switch {
		case !marked:
			t.Fatalf("round %d: MarkNARDeleting refused an old unclaimed NAR", i)
		case beginErr == nil && inUse:
			seen["upload first"]++
		case errors.Is(beginErr, catalog.ErrBusy) && !inUse:
			seen["deletion first"]++
		default:
			t.Fatalf("round %d: BeginNAR: %v; listing in use after the mark: %v", i, beginErr, inUse)
		}
	}
	seen.seenBoth(t, "upload first", "deletion first")
}

// checkInUse fails the test unless BlobInUse(key) is want.
func checkInUse(t *testing.T, c catalog.Catalog, key string, want bool) {
	t.Helper()
	got, err := c.BlobInUse(context.Background(), key)
	if err != nil || got != want {
		t.Fatalf("BlobInUse(%s) = %v, %v; want %v", key, got, err, want)
	}
}

// TestRacePublishMarkDeleting publishes a path naming an unclaimed NAR
// while the lease sweep marks it deleting: a published path never names a
// NAR whose blobs are being deleted.
func TestRacePublishMarkDeleting(t *testing.T) {
	a, b := twoReplicas(t)
	ctx := context.Background()
	seen := outcomes{}
	for i := range raceRounds {
		n := newNAR(fmt.Sprint("claimed", i), t0)
		p := newPath(fmt.Sprint("claimed", i), n)
		must(t, "PutNAR", a.PutNAR(ctx, n))
		var pubErr, markErr error
		var marked bool
		race(func() { pubErr = a.Publish(ctx, p, catalog.PublishOptions{}) },
			func() { _, marked, markErr = b.MarkNARDeleting(ctx, n.Key, t0.Add(time.Hour)) })
		must(t, "MarkNARDeleting", markErr)
		switch {
		case pubErr == nil && !marked:
			seen["publish first"]++
			checkInUse(t, b, n.Key, true)
		case errors.Is(pubErr, catalog.ErrNARNotFound) && marked:
			seen["deletion first"]++
			checkGone(t, b, p.HashPart)
		default:
			t.Fatalf("round %d: Publish: %v; MarkNARDeleting: %v", i, pubErr, marked)
		}
	}
	seen.seenBoth(t, "publish first", "deletion first")
}

// TestRacePublishDeleteSharedNAR publishes a second path naming the NAR
// of a path being deleted: the deletion frees the NAR only if the new path
// does not name it.
func TestRacePublishDeleteSharedNAR(t *testing.T) {
	a, b := twoReplicas(t)
	ctx := context.Background()
	seen := outcomes{}
	cond := catalog.DeleteCondition{CreatedBefore: t0.Add(time.Hour)}
	for i := range raceRounds {
		n := newNAR(fmt.Sprint("shared", i), t0)
		first := newPath(fmt.Sprint("first", i), n)
		second := newPath(fmt.Sprint("second", i), n)
		publish(t, a, n, first)
		var pubErr, delErr error
		var d catalog.Deleted
		race(func() { pubErr = a.Publish(ctx, second, catalog.PublishOptions{}) },
			func() { d, delErr = b.DeletePath(ctx, first.HashPart, cond) })
		must(t, "DeletePath", delErr)
		switch {
		case pubErr == nil && d.NAR == nil:
			seen["publish first"]++
			checkInUse(t, b, n.Key, true)
			checkPublished(t, b, second.HashPart)
		case errors.Is(pubErr, catalog.ErrNARNotFound) && d.NAR != nil:
			seen["deletion first"]++
			checkInUse(t, b, n.Key, false)
		default:
			t.Fatalf("round %d: Publish: %v; DeletePath freed NAR: %v", i, pubErr, d.NAR != nil)
		}
	}
	seen.seenBoth(t, "publish first", "deletion first")
}

// TestRaceDeleteRepublish deletes a path while it is pushed again with
// another NAR (the same contents, other compression): the deletion sees
// the path as it is once locked, whichever comes first, and frees the NAR
// the path named last.
func TestRaceDeleteRepublish(t *testing.T) {
	a, b := twoReplicas(t)
	ctx := context.Background()
	seen := outcomes{}
	for i := range raceRounds {
		xz, zst := newNAR(fmt.Sprint("moved", i), t0), newNAR(fmt.Sprint("moved", i), t0)
		xz.Key = "nar/" + fakeHash(fmt.Sprint("xz", i), 52) + ".nar.xz"
		p := newPath(fmt.Sprint("moved", i), xz)
		publish(t, a, xz, p)
		must(t, "PutNAR", a.PutNAR(ctx, zst))
		again := newPath(fmt.Sprint("moved", i), zst)
		var pubErr, delErr error
		var d catalog.Deleted
		race(func() { pubErr = a.Publish(ctx, again, catalog.PublishOptions{}) },
			func() { d, delErr = b.DeletePath(ctx, p.HashPart, catalog.DeleteCondition{}) })
		must(t, "Publish", pubErr)
		must(t, "DeletePath", delErr)
		if d.NAR == nil || d.NAR.Key != d.Path.NARKey {
			t.Fatalf("round %d: deleted the path naming %s but freed %v", i, d.Path.NARKey, d.NAR)
		}
		got, err := b.Path(ctx, p.HashPart)
		switch {
		case err == nil && d.Path.NARKey == xz.Key && got.NARKey == zst.Key:
			seen["deletion first"]++
		case errors.Is(err, catalog.ErrNotFound) && d.Path.NARKey == zst.Key:
			seen["push first"]++
		default:
			t.Fatalf("round %d: deleted the path naming %s; now: %v, %v", i, d.Path.NARKey, got.NARKey, err)
		}
	}
	seen.seenBoth(t, "deletion first", "push first")
}
