package catalogtest

import (
	"context"
	"errors"
	"testing"

	"github.com/nix-cached/cached/catalog"
)

// testDeletePathsOneByOne deletes, in one batch, paths that share a NAR
// or a deriver, a path named twice and a referrer before what it
// references: the results are those of one DeletePath after the other, so
// an implementation that judges the batch as a whole must still give a
// shared NAR and a shared build log to the last path that had them.
func testDeletePathsOneByOne(t *testing.T, c catalog.Catalog) {
	ctx := context.Background()
	shared := newNAR("one-shared", at(0))
	x, y := newPath("one-x", shared, "k:1"), newPath("one-y", shared, "k:1")
	publish(t, c, shared, x)
	publish(t, c, shared, y)
	zn := newNAR("one-z", at(0))
	z := newPath("one-z", zn, "k:1")
	z.Deriver = x.Deriver // two outputs of one derivation
	publish(t, c, zn, z)
	pn, qn := newNAR("one-p", at(0)), newNAR("one-q", at(0))
	p := newPath("one-p", pn, "k:1")
	q := newPath("one-q", qn, "k:1", "one-p")
	publish(t, c, pn, p)
	publish(t, c, qn, q)

	order := []catalog.Path{q, x, p, x, y, z, newPath("one-absent", pn, "k:1")}
	want := []struct {
		err      error
		nar, log string
	}{
		{nil, qn.Key, q.Deriver},
		{nil, "", ""}, // y still has the NAR, z the deriver
		{nil, pn.Key, p.Deriver},
		{catalog.ErrNotFound, "", ""}, // deleted just before
		{nil, shared.Key, y.Deriver},
		{nil, zn.Key, x.Deriver},
		{catalog.ErrNotFound, "", ""},
	}
	var hashes []string
	for _, p := range order {
		hashes = append(hashes, p.HashPart)
	}
	res, err := c.DeletePaths(ctx, hashes, catalog.DeleteCondition{})
	if err != nil {
		t.Fatalf("DeletePaths: %v", err)
	}
	if len(res) != len(want) {
		t.Fatalf("DeletePaths returned %d results for %d paths", len(res), len(want))
	}
	for i, w := range want {
		r := res[i]
		nar := ""
		if r.NAR != nil {
			nar = r.NAR.Key
		}
		switch {
		case !errors.Is(r.Err, w.err) || (w.err == nil) != (r.Err == nil):
			t.Errorf("result %d (%s): error %v, want %v", i, order[i].StorePath, r.Err, w.err)
		case w.err == nil && (r.Path.HashPart != order[i].HashPart || nar != w.nar || r.OrphanLog != w.log):
			t.Errorf("result %d: deleted %s with NAR %q and log %q; want %s, %q, %q", i,
				r.Path.HashPart, nar, r.OrphanLog, order[i].HashPart, w.nar, w.log)
		}
	}
	for _, p := range []catalog.Path{q, x, p, y, z} {
		checkAbsent(t, c, p.HashPart)
	}
	checkDeleting(t, c, qn.Key, pn.Key, shared.Key, zn.Key)
}
