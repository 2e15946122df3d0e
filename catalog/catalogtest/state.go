package catalogtest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog"
)

// beginNAR calls BeginNAR or fails the test.
func beginNAR(t *testing.T, c catalog.Catalog, key, listingKey string, at time.Time) {
	t.Helper()
	if err := c.BeginNAR(context.Background(), key, listingKey, at); err != nil {
		t.Fatalf("BeginNAR(%s, %q): %v", key, listingKey, err)
	}
}

// markDeleting calls MarkNARDeleting, failing the test on error or when
// the answer is not want; it returns the NAR.
func markDeleting(t *testing.T, c catalog.Catalog, key string, before time.Time, want bool) catalog.NAR {
	t.Helper()
	n, ok, err := c.MarkNARDeleting(context.Background(), key, before)
	if err != nil {
		t.Fatalf("MarkNARDeleting(%s): %v", key, err)
	}
	if ok != want {
		t.Fatalf("MarkNARDeleting(%s, %v) = %v, want %v", key, before, ok, want)
	}
	return n
}

// dropNAR calls DropNAR or fails the test.
func dropNAR(t *testing.T, c catalog.Catalog, key string) {
	t.Helper()
	if err := c.DropNAR(context.Background(), key); err != nil {
		t.Fatalf("DropNAR(%s): %v", key, err)
	}
}

// checkLookup fails the test unless LookupNAR(name) finds want, or, for a
// zero want, fails with ErrNotFound.
func checkLookup(t *testing.T, c catalog.Catalog, name string, want catalog.NAR) {
	t.Helper()
	got, err := c.LookupNAR(context.Background(), name)
	if want.Key == "" {
		if !errors.Is(err, catalog.ErrNotFound) {
			t.Errorf("LookupNAR(%s) = %+v, %v; want ErrNotFound", name, got, err)
		}
		return
	}
	if err != nil {
		t.Errorf("LookupNAR(%s): %v", name, err)
	} else if d := diffNAR(got, want); d != "" {
		t.Errorf("LookupNAR(%s): %s", name, d)
	}
}

// checkInUse fails the test unless BlobInUse(key) is want.
func checkInUse(t *testing.T, c catalog.Catalog, key string, want bool) {
	t.Helper()
	got, err := c.BlobInUse(context.Background(), key)
	if err != nil {
		t.Fatalf("BlobInUse(%s): %v", key, err)
	}
	if got != want {
		t.Errorf("BlobInUse(%s) = %v, want %v", key, got, want)
	}
}

// checkDeleting fails the test unless DeletingNARs lists exactly the keys.
func checkDeleting(t *testing.T, c catalog.Catalog, keys ...string) {
	t.Helper()
	nars, err := c.DeletingNARs(context.Background())
	if err != nil {
		t.Fatalf("DeletingNARs: %v", err)
	}
	var got []string
	for _, n := range nars {
		got = append(got, n.Key)
	}
	slices.Sort(got)
	keys = slices.Sorted(slices.Values(keys))
	if !slices.Equal(got, keys) {
		t.Errorf("DeletingNARs = %q, want %q", got, keys)
	}
}

// unclaimedKeys returns the sorted keys UnclaimedNARs(before) lists.
func unclaimedKeys(t *testing.T, c catalog.Catalog, before time.Time) []string {
	t.Helper()
	nars, err := c.UnclaimedNARs(context.Background(), before)
	if err != nil {
		t.Fatalf("UnclaimedNARs: %v", err)
	}
	var keys []string
	for _, n := range nars {
		keys = append(keys, n.Key)
	}
	slices.Sort(keys)
	return keys
}

func testBeginNAR(t *testing.T, c catalog.Catalog) {
	ctx := context.Background()
	n := newNAR("begun", at(0))
	p := newPath("begun", n, "k:1")
	beginNAR(t, c, n.Key, n.ListingKey, at(0))

	// Pending: invisible to readers and Publish, but its blobs are taken.
	checkLookup(t, c, n.Key, catalog.NAR{})
	if err := c.Publish(ctx, p, noOpts); !errors.Is(err, catalog.ErrNARNotFound) {
		t.Errorf("Publish naming a pending NAR: error %v, want ErrNARNotFound", err)
	}
	checkAbsent(t, c, p.HashPart)
	checkInUse(t, c, n.Key, true)
	checkInUse(t, c, n.ListingKey, true)
	if got := unclaimedKeys(t, c, at(time.Hour)); !slices.Equal(got, []string{n.Key}) {
		t.Errorf("UnclaimedNARs with a pending NAR = %q, want it listed", got)
	}
	// A second upload of the same key begins too.
	beginNAR(t, c, n.Key, n.ListingKey, at(time.Second))

	alias := "nar/" + FakeHash("alias:begun", 52) + ".nar.xz"
	putNAR(t, c, n, alias)
	checkLookup(t, c, n.Key, n)
	checkLookup(t, c, alias, n)
	if err := c.Publish(ctx, p, noOpts); err != nil {
		t.Fatalf("Publish naming the NAR once ready: %v", err)
	}
	checkPath(t, c, p)

	// BeginNAR without a listing key records none.
	bare := newNAR("bare", at(0))
	bare.ListingKey = ""
	beginNAR(t, c, bare.Key, "", at(0))
	putNAR(t, c, bare)
	checkLookup(t, c, bare.Key, bare)
}

func testBeginNARRenews(t *testing.T, c catalog.Catalog) {
	n := newNAR("renewed", at(0))
	putNAR(t, c, n)
	beginNAR(t, c, n.Key, n.ListingKey, at(2*time.Hour))
	// A ready NAR stays visible while it is uploaded again.
	renewed := n
	renewed.CreatedAt = at(2 * time.Hour)
	checkLookup(t, c, n.Key, renewed)
	if got := unclaimedKeys(t, c, at(time.Hour)); len(got) != 0 {
		t.Errorf("UnclaimedNARs(t0+1h) after BeginNAR renewed the lease = %q, want none", got)
	}
	markDeleting(t, c, n.Key, at(time.Hour), false)
	// A renewal never moves the lease back.
	beginNAR(t, c, n.Key, n.ListingKey, at(time.Minute))
	checkLookup(t, c, n.Key, renewed)
	markDeleting(t, c, n.Key, at(time.Hour), false)
	markDeleting(t, c, n.Key, at(3*time.Hour), true)
}

func testMarkNARDeleting(t *testing.T, c catalog.Catalog) {
	ctx := context.Background()
	before := at(time.Hour)
	claimed := newNAR("claimed", at(0))
	publish(t, c, claimed, newPath("claimed", claimed, "k:1"))
	renewed := newNAR("renewed", at(0))
	putNAR(t, c, renewed)
	renewed.CreatedAt = at(2 * time.Hour) // a push renewed the lease
	putNAR(t, c, renewed)
	recentPending := newNAR("recent-pending", at(30*time.Minute))
	beginNAR(t, c, recentPending.Key, recentPending.ListingKey, at(90*time.Minute))
	stalePending := newNAR("stale-pending", at(0))
	beginNAR(t, c, stalePending.Key, stalePending.ListingKey, at(0)) // an upload that crashed
	free := newNAR("free", at(0))
	alias := "nar/" + FakeHash("alias:free", 52) + ".nar.xz"
	putNAR(t, c, free, alias)

	for _, tc := range []struct {
		key  string
		want bool
	}{
		{claimed.Key, false},
		{claimed.ListingKey, false}, // a listing blob goes with its NAR
		{renewed.Key, false},
		{recentPending.Key, false},
		{stalePending.Key, true},
		{free.Key, true},
		{free.Key, false}, // already deleting
		{stalePending.Key, false},
	} {
		got, ok, err := c.MarkNARDeleting(ctx, tc.key, before)
		if err != nil {
			t.Fatalf("MarkNARDeleting(%s): %v", tc.key, err)
		}
		if ok != tc.want {
			t.Errorf("MarkNARDeleting(%s) = %v, want %v", tc.key, ok, tc.want)
		}
		if ok && tc.key == free.Key {
			if d := diffNAR(got, free); d != "" {
				t.Errorf("MarkNARDeleting(%s) returned %s", tc.key, d)
			}
		}
		if ok && tc.key == stalePending.Key && (got.Key != stalePending.Key || got.ListingKey != stalePending.ListingKey) {
			t.Errorf("MarkNARDeleting(stale pending) returned blobs %q, %q; want %q, %q",
				got.Key, got.ListingKey, stalePending.Key, stalePending.ListingKey)
		}
	}
	checkDeleting(t, c, free.Key, stalePending.Key)
	for _, name := range []string{claimed.Key, renewed.Key} {
		if _, err := c.LookupNAR(ctx, name); err != nil {
			t.Errorf("LookupNAR(%s) after a refused mark: %v", name, err)
		}
	}
	// Deleting: invisible, its blobs free to go, not unclaimed any more.
	checkLookup(t, c, free.Key, catalog.NAR{})
	checkLookup(t, c, alias, catalog.NAR{})
	checkInUse(t, c, free.Key, false)
	checkInUse(t, c, free.ListingKey, false)
	checkInUse(t, c, recentPending.Key, true)
	if got := unclaimedKeys(t, c, at(3*time.Hour)); !slices.Equal(got,
		slices.Sorted(slices.Values([]string{renewed.Key, recentPending.Key}))) {
		t.Errorf("UnclaimedNARs after marking = %q, want the renewed and the recent pending NARs", got)
	}

	dropNAR(t, c, free.Key)
	dropNAR(t, c, free.Key) // absent: fine
	checkDeleting(t, c, stalePending.Key)
	// The dropped NAR can be uploaded again; its old alias went with it.
	free.CreatedAt = at(3 * time.Hour)
	beginNAR(t, c, free.Key, free.ListingKey, free.CreatedAt)
	putNAR(t, c, free)
	checkLookup(t, c, free.Key, free)
	checkLookup(t, c, alias, catalog.NAR{})
	putNAR(t, c, free, alias)
	checkLookup(t, c, alias, free)
}

func testDropNAR(t *testing.T, c catalog.Catalog) {
	ready := newNAR("ready", at(0))
	putNAR(t, c, ready)
	pending := newNAR("pending", at(0))
	beginNAR(t, c, pending.Key, pending.ListingKey, at(0))
	// Only records marked deleting are dropped.
	dropNAR(t, c, ready.Key)
	dropNAR(t, c, pending.Key)
	dropNAR(t, c, "nar/"+FakeHash("absent", 52)+".nar.zst")
	checkLookup(t, c, ready.Key, ready)
	checkInUse(t, c, pending.Key, true)
	putNAR(t, c, pending)
	checkLookup(t, c, pending.Key, pending)
}

func testNARBusy(t *testing.T, c catalog.Catalog) {
	ctx := context.Background()
	doomed := newNAR("doomed", at(0))
	putNAR(t, c, doomed)
	markDeleting(t, c, doomed.Key, at(time.Hour), true)
	other := newNAR("other", at(0))
	for _, tc := range []struct {
		name            string
		key, listingKey string
		busy            bool
	}{
		{"same key", doomed.Key, other.ListingKey, true},
		{"same key, no listing", doomed.Key, "", true},
		{"same listing key", other.Key, doomed.ListingKey, true},
		{"key is the deleting listing key", doomed.ListingKey, other.ListingKey, true},
		{"listing key is the deleting key", other.Key, doomed.Key, true},
		{"unrelated", other.Key, other.ListingKey, false},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			err := c.BeginNAR(ctx, tc.key, tc.listingKey, at(2*time.Hour))
			if tc.busy != errors.Is(err, catalog.ErrBusy) || (!tc.busy && err != nil) {
				t.Errorf("BeginNAR(%s, %s): error %v, want busy %v", tc.key, tc.listingKey, err, tc.busy)
			}
			n := other
			n.Key, n.ListingKey = tc.key, tc.listingKey
			err = c.PutNAR(ctx, n)
			if tc.busy != errors.Is(err, catalog.ErrBusy) || (!tc.busy && err != nil) {
				t.Errorf("PutNAR(%s, %s): error %v, want busy %v", tc.key, tc.listingKey, err, tc.busy)
			}
		})
	}
	// Refused calls recorded nothing, and the deletion is undisturbed.
	checkDeleting(t, c, doomed.Key)
	checkInUse(t, c, doomed.ListingKey, false)
	checkLookup(t, c, doomed.Key, catalog.NAR{})
	if got := unclaimedKeys(t, c, at(3*time.Hour)); !slices.Equal(got, []string{other.Key}) {
		t.Errorf("UnclaimedNARs after refused uploads = %q, want only %s", got, other.Key)
	}

	dropNAR(t, c, doomed.Key)
	checkDeleting(t, c)
	doomed.CreatedAt = at(2 * time.Hour)
	beginNAR(t, c, doomed.Key, doomed.ListingKey, doomed.CreatedAt)
	putNAR(t, c, doomed)
	checkLookup(t, c, doomed.Key, doomed)
}

func testOrphanPlaceholder(t *testing.T, c catalog.Catalog) {
	ctx := context.Background()
	orphan := "nar/" + FakeHash("orphan", 52) + ".nar.zst"
	orphanListing := "ls/" + FakeHash("orphan", 52) + ".ls"
	kept := newNAR("kept", at(0))
	putNAR(t, c, kept)

	n := markDeleting(t, c, orphan, at(time.Hour), true)
	if n.Key != orphan || n.ListingKey != "" {
		t.Errorf("placeholder names blobs %q, %q; want %q and no listing", n.Key, n.ListingKey, orphan)
	}
	markDeleting(t, c, orphanListing, at(time.Hour), true)
	// Another NAR's listing blob is not an orphan.
	markDeleting(t, c, kept.ListingKey, at(time.Hour), false)
	checkDeleting(t, c, orphan, orphanListing)
	checkInUse(t, c, orphan, false)
	checkInUse(t, c, kept.ListingKey, true)
	markDeleting(t, c, orphan, at(time.Hour), false)

	// Uploads of the blobs wait until the placeholders are dropped.
	fresh := newNAR("fresh", at(2*time.Hour))
	fresh.Key, fresh.ListingKey = orphan, orphanListing
	if err := c.BeginNAR(ctx, orphan, "", at(2*time.Hour)); !errors.Is(err, catalog.ErrBusy) {
		t.Errorf("BeginNAR of an orphan being deleted: error %v, want ErrBusy", err)
	}
	if err := c.PutNAR(ctx, fresh); !errors.Is(err, catalog.ErrBusy) {
		t.Errorf("PutNAR of an orphan being deleted: error %v, want ErrBusy", err)
	}
	dropNAR(t, c, orphan)
	if err := c.BeginNAR(ctx, orphan, orphanListing, at(2*time.Hour)); !errors.Is(err, catalog.ErrBusy) {
		t.Errorf("BeginNAR with an orphan listing being deleted: error %v, want ErrBusy", err)
	}
	dropNAR(t, c, orphanListing)
	checkDeleting(t, c)
	beginNAR(t, c, orphan, orphanListing, at(2*time.Hour))
	putNAR(t, c, fresh)
	checkLookup(t, c, orphan, fresh)
	checkInUse(t, c, orphanListing, true)
}
