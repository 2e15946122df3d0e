package catalogtest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog"
)

// changesAfter reads the whole change log after after, a few entries at a
// time, and checks that Seq strictly increases past after.
func changesAfter(t *testing.T, c catalog.Catalog, after int64) []catalog.Change {
	t.Helper()
	var out []catalog.Change
	for {
		page, err := c.Changes(context.Background(), after, 3)
		if err != nil {
			t.Fatalf("Changes(after %d): %v", after, err)
		}
		for _, ch := range page {
			if ch.Seq <= after {
				t.Fatalf("Changes: Seq %d (%s) does not increase past %d", ch.Seq, ch.HashPart, after)
			}
			after = ch.Seq
		}
		out = append(out, page...)
		if len(page) < 3 {
			return out
		}
	}
}

// lastChange calls LastChange or fails the test.
func lastChange(t *testing.T, c catalog.Catalog) int64 {
	t.Helper()
	seq, err := c.LastChange(context.Background())
	if err != nil {
		t.Fatalf("LastChange: %v", err)
	}
	return seq
}

// checkChanges fails the test unless the change log after after names
// exactly the paths of seeds, in that order, and LastChange is its last
// Seq. It returns that Seq.
func checkChanges(t *testing.T, c catalog.Catalog, after int64, seeds ...string) int64 {
	t.Helper()
	return checkLog(t, c, after, true, seeds)
}

// checkChangeSet is checkChanges for the changes of one transaction, whose
// order in the log is not defined.
func checkChangeSet(t *testing.T, c catalog.Catalog, after int64, seeds ...string) int64 {
	t.Helper()
	return checkLog(t, c, after, false, seeds)
}

// checkLog is checkChanges, comparing in order or as sets.
func checkLog(t *testing.T, c catalog.Catalog, after int64, ordered bool, seeds []string) int64 {
	t.Helper()
	got := changesAfter(t, c, after)
	var gotHashes, want []string
	for _, ch := range got {
		gotHashes = append(gotHashes, ch.HashPart)
	}
	for _, s := range seeds {
		want = append(want, HashPart(s))
	}
	if !ordered {
		slices.Sort(gotHashes)
		slices.Sort(want)
	}
	if !slices.Equal(gotHashes, want) {
		t.Errorf("change log after %d = %q, want %q (%v)", after, gotHashes, want, seeds)
	}
	last := after
	if len(got) > 0 {
		last = got[len(got)-1].Seq
	}
	if seq := lastChange(t, c); seq != last {
		t.Errorf("LastChange = %d, want %d, the last Seq of the log", seq, last)
	}
	return last
}

func testChangesEmpty(t *testing.T, c catalog.Catalog) {
	if seq := lastChange(t, c); seq != 0 {
		t.Errorf("LastChange of a new catalog = %d, want 0", seq)
	}
	got, err := c.Changes(context.Background(), 0, 10)
	if err != nil || len(got) != 0 {
		t.Errorf("Changes of a new catalog = %v, %v; want none", got, err)
	}
}

func testChangesPublish(t *testing.T, c catalog.Catalog) {
	ctx := context.Background()
	n := newNAR("logged", at(0))
	first := newPath("logged", n, "k:old")
	publish(t, c, n, first)
	last := checkChanges(t, c, 0, "logged")
	if last <= 0 {
		t.Errorf("first Seq = %d, want it positive (0 means none seen)", last)
	}

	// A replacement with new signatures is a change of its narinfo.
	second := newPath("logged", n, "k:old k:new")
	second.CreatedAt = at(time.Hour)
	if err := c.Publish(ctx, second, noOpts); err != nil {
		t.Fatalf("re-Publish with the same NarHash: %v", err)
	}
	last = checkChanges(t, c, last, "logged")

	otherNAR := newNAR("other", at(0))
	publish(t, c, otherNAR, newPath("other", otherNAR, "k:1", "logged"))
	checkChanges(t, c, last, "other")
	checkChanges(t, c, 0, "logged", "logged", "other")
}

func testChangesFailedPublish(t *testing.T, c catalog.Catalog) {
	ctx := context.Background()
	n := newNAR("kept", at(0))
	publish(t, c, n, newPath("kept", n, "k:1"))
	last := checkChanges(t, c, 0, "kept")

	conflicting := newNAR("kept-other", at(0))
	putNAR(t, c, conflicting)
	incompleteNAR := newNAR("incomplete", at(0))
	putNAR(t, c, incompleteNAR)
	for _, tc := range []struct {
		p    catalog.Path
		want error
	}{
		{newPath("kept", conflicting, "k:1"), catalog.ErrConflict},
		{newPath("incomplete", incompleteNAR, "k:1", "missing"), catalog.ErrMissingReferences},
		{newPath("no-nar", newNAR("no-nar", at(0)), "k:1"), catalog.ErrNARNotFound},
	} {
		if err := c.Publish(ctx, tc.p, noOpts); !errors.Is(err, tc.want) {
			t.Errorf("Publish(%s): error %v, want %v", tc.p.StorePath, err, tc.want)
		}
	}
	checkChanges(t, c, last)
}

// testChangesOnlyNarInfo checks that what leaves every narinfo as it was
// records nothing: NAR uploads, uses, pins, realisations, refused
// deletions.
func testChangesOnlyNarInfo(t *testing.T, c catalog.Catalog) {
	ctx := context.Background()
	depNAR, appNAR := newNAR("dep", at(0)), newNAR("app", at(0))
	publish(t, c, depNAR, newPath("dep", depNAR, "k:1"))
	publish(t, c, appNAR, newPath("app", appNAR, "k:1", "dep"))
	last := checkChanges(t, c, 0, "dep", "app")

	putNAR(t, c, newNAR("unclaimed", at(0)))
	putNAR(t, c, appNAR, "nar/"+FakeHash("alias:app", 52)+".nar.xz") // renewed
	if err := c.RecordUse(ctx, map[string]time.Time{HashPart("dep"): at(time.Hour)},
		map[string]time.Time{appNAR.Key: at(time.Hour)}); err != nil {
		t.Fatalf("RecordUse: %v", err)
	}
	addPin(t, c, "release", "app", at(0), time.Time{}, 0)
	if err := c.PutRealisation(ctx, "sha256:01!out",
		[]byte(`{"outPath":"/nix/store/`+HashPart("app")+`-app"}`)); err != nil {
		t.Fatalf("PutRealisation: %v", err)
	}
	for _, h := range []string{HashPart("dep"), HashPart("app"), HashPart("absent")} {
		if _, err := c.DeletePath(ctx, h, catalog.DeleteCondition{}); err == nil {
			t.Fatalf("DeletePath(%s) succeeded; the test wants it refused", h)
		}
	}
	if err := c.RemovePin(ctx, "release"); err != nil {
		t.Fatalf("RemovePin: %v", err)
	}
	checkChanges(t, c, last)
}

func testChangesDelete(t *testing.T, c catalog.Catalog) {
	ctx := context.Background()
	for _, s := range []struct{ seed, ref string }{
		{"dep", ""}, {"app", "dep"}, {"lone", ""}, {"other", ""},
	} {
		n := newNAR(s.seed, at(0))
		var refs []string
		if s.ref != "" {
			refs = append(refs, s.ref)
		}
		publish(t, c, n, newPath(s.seed, n, "k:1", refs...))
	}
	last := checkChanges(t, c, 0, "dep", "app", "lone", "other")

	// Only the paths the batch deleted (in no particular order: they
	// commit together).
	order := []string{HashPart("other"), HashPart("dep"), HashPart("absent"), HashPart("lone"), HashPart("other")}
	res, err := c.DeletePaths(ctx, order, catalog.DeleteCondition{})
	if err != nil || len(res) != len(order) {
		t.Fatalf("DeletePaths = %+v, %v; want %d results", res, err, len(order))
	}
	for i, want := range []error{nil, catalog.ErrReferenced, catalog.ErrNotFound, nil, catalog.ErrNotFound} {
		if !errors.Is(res[i].Err, want) || (want == nil) != (res[i].Err == nil) {
			t.Errorf("DeletePaths result %d (%s): error %v, want %v", i, order[i], res[i].Err, want)
		}
	}
	last = checkChangeSet(t, c, last, "other", "lone")

	// A refusal of the whole batch records nothing.
	res, err = c.DeletePaths(ctx, []string{HashPart("dep"), HashPart("lone")}, catalog.DeleteCondition{})
	if err != nil || len(res) != 2 || res[0].Err == nil || res[1].Err == nil {
		t.Fatalf("DeletePaths(referenced, deleted) = %+v, %v; want both refused", res, err)
	}
	last = checkChanges(t, c, last)

	// The referrer first, then what it referenced.
	deletePath(t, c, HashPart("app"), catalog.DeleteCondition{})
	last = checkChanges(t, c, last, "app")
	deletePath(t, c, HashPart("dep"), catalog.DeleteCondition{})
	checkChanges(t, c, last, "dep")
}

func testChangesPaging(t *testing.T, c catalog.Catalog) {
	ctx := context.Background()
	var seeds []string
	for _, s := range []string{"p0", "p1", "p2", "p3", "p4"} {
		n := newNAR(s, at(0))
		publish(t, c, n, newPath(s, n, "k:1"))
		seeds = append(seeds, s)
	}
	all := changesAfter(t, c, 0)
	if len(all) != len(seeds) {
		t.Fatalf("change log = %v, want %d entries", all, len(seeds))
	}
	for _, tc := range []struct {
		after int64
		limit int
		want  []catalog.Change
	}{
		{0, 2, all[:2]},
		{all[1].Seq, 2, all[2:4]},
		{all[3].Seq, 2, all[4:]},
		{all[4].Seq, 2, nil},
		{all[0].Seq, 10, all[1:]},
		{all[2].Seq - 1, 1, all[2:3]},
		{all[0].Seq - 1, 5, all},
	} {
		got, err := c.Changes(ctx, tc.after, tc.limit)
		if err != nil {
			t.Fatalf("Changes(%d, %d): %v", tc.after, tc.limit, err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("Changes(%d, %d) = %v, want %v", tc.after, tc.limit, got, tc.want)
		}
	}
}

func testChangesPrune(t *testing.T, c catalog.Catalog) {
	ctx := context.Background()
	prune := func(before time.Time, want int64) {
		t.Helper()
		n, err := c.PruneChanges(ctx, before)
		if err != nil {
			t.Fatalf("PruneChanges(%v): %v", before, err)
		}
		if n != want {
			t.Errorf("PruneChanges(%v) removed %d entries, want %d", before, n, want)
		}
	}
	start := time.Now().Add(-time.Second)
	for _, s := range []string{"early", "earlier"} {
		n := newNAR(s, at(0))
		publish(t, c, n, newPath(s, n, "k:1"))
	}
	// Entries are recorded with the time of the change, not the path's.
	time.Sleep(5 * time.Millisecond)
	between := time.Now()
	time.Sleep(5 * time.Millisecond)
	n := newNAR("new", at(0))
	publish(t, c, n, newPath("new", n, "k:1"))

	prune(start, 0)
	checkChanges(t, c, 0, "early", "earlier", "new")
	prune(between, 2)
	prune(between, 0)
	last := checkChanges(t, c, 0, "new")

	// Emptied, the log does not hand out a Seq again: a follower that saw
	// the last one sees what comes next.
	prune(time.Now().Add(time.Second), 1)
	checkChanges(t, c, 0)
	deletePath(t, c, HashPart("early"), catalog.DeleteCondition{})
	got := changesAfter(t, c, last)
	if len(got) != 1 || got[0].HashPart != HashPart("early") {
		t.Errorf("change log after pruning everything and a deletion = %v, want the deletion after Seq %d",
			got, last)
	}
}
