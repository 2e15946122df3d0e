package catalogtest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog"
)

// checkServed fails the test unless NarInfo serves exactly the paths of
// served among all.
func checkServed(t *testing.T, c catalog.Catalog, step string, all []catalog.Path, served ...string) {
	t.Helper()
	for _, p := range all {
		_, err := c.NarInfo(context.Background(), p.HashPart)
		switch want := slices.Contains(served, p.HashPart); {
		case want && err != nil:
			t.Errorf("%s: NarInfo(%s): %v, want it served", step, p.StorePath, err)
		case !want && !errors.Is(err, catalog.ErrNotFound):
			t.Errorf("%s: NarInfo(%s): %v, want ErrNotFound", step, p.StorePath, err)
		}
	}
}

// checkQuarantined fails the test unless Quarantined lists the seeds'
// paths, each hidden by narKey.
func checkQuarantined(t *testing.T, c catalog.Catalog, step, narKey, reason string, seeds ...string) {
	t.Helper()
	got, err := c.Quarantined(context.Background())
	if err != nil {
		t.Fatalf("%s: Quarantined: %v", step, err)
	}
	var hashes []string
	for _, q := range got {
		hashes = append(hashes, q.HashPart)
		if q.NARKey != narKey || q.Reason != reason || !q.Since.Equal(at(5*time.Second)) {
			t.Errorf("%s: Quarantined: %+v, want NAR %s, reason %q, since %v", step, q, narKey, reason, at(5*time.Second))
		}
	}
	var want []string
	for _, s := range seeds {
		want = append(want, HashPart(s))
	}
	slices.Sort(hashes)
	slices.Sort(want)
	if !slices.Equal(hashes, want) {
		t.Errorf("%s: Quarantined lists %v, want %v", step, hashes, want)
	}
}

// testQuarantine fences off a damaged NAR in a chain A <- B <- C (C
// references B, B references A) beside an unrelated D: B and C stop being
// served, A and D are not touched; once B's NAR is uploaded again, or B
// published with another NAR, B and C are served again as each is
// published again.
func testQuarantine(t *testing.T, c catalog.Catalog) {
	ctx := context.Background()
	na, nb, nc, nd := newNAR("a", at(0)), newNAR("b", at(0)), newNAR("c", at(0)), newNAR("d", at(0))
	pa, pb := newPath("a", na, "k:1"), newPath("b", nb, "k:1", "a", "b")
	pc, pd := newPath("c", nc, "k:1", "b"), newPath("d", nd, "k:1")
	all := []catalog.Path{pa, pb, pc, pd}
	publish(t, c, na, pa)
	publish(t, c, nb, pb)
	publish(t, c, nc, pc)
	publish(t, c, nd, pd)
	checkServed(t, c, "before", all, pa.HashPart, pb.HashPart, pc.HashPart, pd.HashPart)

	seq := lastChange(t, c)
	hidden, err := c.Quarantine(ctx, nb.Key, "NarHash mismatch", at(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(hidden)
	if want := []string{pb.HashPart, pc.HashPart}; !slices.Equal(hidden, sortedRefs(want)) {
		t.Errorf("Quarantine hid %v, want B and C %v", hidden, want)
	}
	seq = checkChangeSet(t, c, seq, "b", "c")
	checkServed(t, c, "quarantined", all, pa.HashPart, pd.HashPart)
	checkQuarantined(t, c, "quarantined", nb.Key, "NarHash mismatch", "b", "c")
	if n, err := c.LookupNAR(ctx, nb.Key); err != nil || !n.Quarantined {
		t.Errorf("LookupNAR of the quarantined NAR: %+v, %v; want Quarantined", n, err)
	}
	if n, err := c.LookupNAR(ctx, na.Key); err != nil || n.Quarantined {
		t.Errorf("LookupNAR of a sound NAR: %+v, %v", n, err)
	}
	if again, err := c.Quarantine(ctx, nb.Key, "again", at(6*time.Second)); err != nil || len(again) != 0 {
		t.Errorf("Quarantine twice: %v, %v; want nothing more hidden", again, err)
	}
	if none, err := c.Quarantine(ctx, "nar/unknown.nar.zst", "x", at(6*time.Second)); err != nil || len(none) != 0 {
		t.Errorf("Quarantine of an unknown key: %v, %v", none, err)
	}
	queue, err := c.ScrubQueue(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range queue {
		if n.Key == nb.Key {
			t.Errorf("ScrubQueue offers the quarantined NAR")
		}
	}
	// A new path cannot reference a hidden one: the client must push it
	// again first.
	ne := newNAR("e", at(0))
	putNAR(t, c, ne)
	var mre *catalog.MissingReferencesError
	if err := c.Publish(ctx, newPath("e", ne, "k:1", "c"), catalog.PublishOptions{}); !errors.As(err, &mre) ||
		!slices.Equal(mre.HashParts, []string{pc.HashPart}) {
		t.Errorf("Publish of a referrer of a hidden path: %v, want C missing", err)
	}

	// A verified upload of the NAR lifts its quarantine; each hidden path
	// is served again when it is pushed again (nix copy pushes every path
	// it finds missing, referrers after what they reference), so that a
	// client copying the closure never sees a path appear mid-copy.
	putNAR(t, c, nb)
	if n, err := c.LookupNAR(ctx, nb.Key); err != nil || n.Quarantined {
		t.Errorf("LookupNAR after the upload: %+v, %v", n, err)
	}
	checkServed(t, c, "uploaded again", all, pa.HashPart, pd.HashPart)
	republish := func(p catalog.Path) {
		t.Helper()
		if err := c.Publish(ctx, p, catalog.PublishOptions{}); err != nil {
			t.Fatalf("Publish(%s) again: %v", p.StorePath, err)
		}
	}
	seq = lastChange(t, c)
	republish(pb)
	checkServed(t, c, "B pushed again", all, pa.HashPart, pb.HashPart, pd.HashPart)
	republish(pc)
	checkServed(t, c, "C pushed again", all, pa.HashPart, pb.HashPart, pc.HashPart, pd.HashPart)
	checkChanges(t, c, seq, "b", "c")
	checkQuarantined(t, c, "pushed again", "", "")

	// B cannot be published again over its quarantined NAR: the NAR must
	// be uploaded again first (its HEAD says it is absent).
	if _, err := c.Quarantine(ctx, nb.Key, "lost", at(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctx, pb, catalog.PublishOptions{}); !errors.Is(err, catalog.ErrNARNotFound) {
		t.Errorf("Publish over a quarantined NAR: %v, want ErrNARNotFound", err)
	}
	checkServed(t, c, "quarantined again", all, pa.HashPart, pd.HashPart)
	// Published with another NAR of the same contents, it is served; C,
	// pushed again after it, too.
	other := nb
	other.Key, other.ListingKey = "nar/"+FakeHash("other-b", 52)+".nar.zst", "other-b.ls"
	putNAR(t, c, other)
	repub := pb
	repub.NARKey = other.Key
	republish(repub)
	checkServed(t, c, "B published with another NAR", all, pa.HashPart, pb.HashPart, pd.HashPart)
	republish(pc)
	checkServed(t, c, "C pushed again after it", all, pa.HashPart, pb.HashPart, pc.HashPart, pd.HashPart)
	checkQuarantined(t, c, "published with another NAR", "", "")

	// Deleting a hidden path takes it off the list.
	if _, err := c.Quarantine(ctx, nc.Key, "lost", at(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	checkQuarantined(t, c, "C quarantined", nc.Key, "lost", "c")
	deletePath(t, c, pc.HashPart, catalog.DeleteCondition{})
	checkQuarantined(t, c, "C deleted", "", "")
}

// testScrubQueue checks the order of ScrubQueue: never scrubbed first (in
// the order recorded), then scrubbed longest ago.
func testScrubQueue(t *testing.T, c catalog.Catalog) {
	ctx := context.Background()
	var keys []string
	for _, s := range []string{"q1", "q2", "q3"} {
		n := newNAR(s, at(0))
		publish(t, c, n, newPath(s, n, "k:1"))
		keys = append(keys, n.Key)
	}
	order := func(step string, want ...string) {
		t.Helper()
		q, err := c.ScrubQueue(ctx, 2)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, n := range q {
			got = append(got, n.Key)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: ScrubQueue = %v, want %v", step, got, want)
		}
	}
	order("never scrubbed", keys[0], keys[1])
	for i, k := range []string{keys[1], keys[0]} {
		if err := c.MarkScrubbed(ctx, k, at(time.Duration(10+i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	order("two scrubbed", keys[2], keys[1])
	if err := c.MarkScrubbed(ctx, keys[2], at(20*time.Second)); err != nil {
		t.Fatal(err)
	}
	order("all scrubbed", keys[1], keys[0])
}
