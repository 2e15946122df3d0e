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

// deletePath calls DeletePath or fails the test.
func deletePath(t *testing.T, c catalog.Catalog, hashPart string, cond catalog.DeleteCondition) catalog.Deleted {
	t.Helper()
	d, err := c.DeletePath(context.Background(), hashPart, cond)
	if err != nil {
		t.Fatalf("DeletePath(%s, %+v): %v", hashPart, cond, err)
	}
	if d.Path.HashPart != hashPart {
		t.Errorf("DeletePath(%s) returned path %s", hashPart, d.Path.HashPart)
	}
	checkAbsent(t, c, hashPart)
	return d
}

// addPin calls AddPin or fails the test.
func addPin(t *testing.T, c catalog.Catalog, name, seed string, created, expires time.Time, keep int) {
	t.Helper()
	p := catalog.Pin{Name: name, HashPart: HashPart(seed), CreatedAt: created, ExpiresAt: expires}
	if err := c.AddPin(context.Background(), p, keep); err != nil {
		t.Fatalf("AddPin(%s, %s): %v", name, seed, err)
	}
}

func testDeletePathRefused(t *testing.T, c catalog.Catalog) {
	ctx := context.Background()
	paths := map[string]catalog.Path{}
	add := func(seed string, created time.Time, refs ...string) {
		n := newNAR(seed, created)
		p := newPath(seed, n, "k:1", refs...)
		publish(t, c, n, p)
		paths[seed] = p
	}
	add("dep", at(0), "dep")
	add("app", at(0), "app", "dep")
	add("pinned", at(0))
	addPin(t, c, "keep", "pinned", at(0), time.Time{}, 0)
	add("young", at(2*time.Hour))
	add("recent", at(0))
	if err := c.RecordUse(ctx, map[string]time.Time{HashPart("recent"): at(2 * time.Hour)}, nil); err != nil {
		t.Fatalf("RecordUse: %v", err)
	}
	p := paths["recent"]
	p.LastUsed = at(2 * time.Hour)
	paths["recent"] = p

	hour := at(time.Hour)
	for _, tc := range []struct {
		seed string
		cond catalog.DeleteCondition
		want error
		says string // what the message names
	}{
		{"absent", catalog.DeleteCondition{}, catalog.ErrNotFound, ""},
		{"dep", catalog.DeleteCondition{}, catalog.ErrReferenced, HashPart("app")},
		{"dep", catalog.DeleteCondition{IgnorePins: true}, catalog.ErrReferenced, HashPart("app")},
		{"pinned", catalog.DeleteCondition{}, catalog.ErrPinned, "keep"},
		{"pinned", catalog.DeleteCondition{CreatedBefore: hour, UsedBefore: hour}, catalog.ErrPinned, "keep"},
		{"young", catalog.DeleteCondition{CreatedBefore: hour}, catalog.ErrKept, ""},
		{"young", catalog.DeleteCondition{CreatedBefore: at(2 * time.Hour)}, catalog.ErrKept, ""}, // at: kept
		{"recent", catalog.DeleteCondition{UsedBefore: at(2 * time.Hour)}, catalog.ErrKept, ""},
		{"recent", catalog.DeleteCondition{CreatedBefore: hour, UsedBefore: hour}, catalog.ErrKept, ""},
	} {
		_, err := c.DeletePath(ctx, HashPart(tc.seed), tc.cond)
		if !errors.Is(err, tc.want) {
			t.Errorf("DeletePath(%s, %+v): error %v, want %v", tc.seed, tc.cond, err, tc.want)
		} else if !strings.Contains(err.Error(), tc.says) {
			t.Errorf("DeletePath(%s): error %q does not name %s", tc.seed, err, tc.says)
		}
	}
	// Nothing changed.
	for _, p := range paths {
		checkPath(t, c, p)
	}
	checkDeleting(t, c)
	checkPins(t, c, wantPin{"keep", "pinned", at(0), time.Time{}, true})

	// Just old enough.
	deletePath(t, c, HashPart("young"), catalog.DeleteCondition{CreatedBefore: at(2*time.Hour + time.Millisecond)})
	deletePath(t, c, HashPart("recent"), catalog.DeleteCondition{UsedBefore: at(2*time.Hour + time.Millisecond)})
	// A referrer goes first, then what it referenced; a self-reference
	// does not count.
	deletePath(t, c, HashPart("app"), catalog.DeleteCondition{})
	deletePath(t, c, HashPart("dep"), catalog.DeleteCondition{})
}

func testDeletePathNAR(t *testing.T, c catalog.Catalog) {
	cond := catalog.DeleteCondition{CreatedBefore: at(time.Hour), UsedBefore: at(time.Hour)}

	// The last path of an old NAR: both go.
	n := newNAR("last", at(0))
	p := newPath("last", n, "k:1", "last")
	publish(t, c, n, p)
	alias := "nar/" + FakeHash("alias:last", 52) + ".nar.xz"
	putNAR(t, c, n, alias)
	d := deletePath(t, c, p.HashPart, cond)
	if diff := diffPath(d.Path, p); diff != "" {
		t.Errorf("Deleted.Path: %s", diff)
	}
	if d.NAR == nil {
		t.Fatalf("DeletePath(last path of an old NAR) returned no NAR")
	}
	if diff := diffNAR(*d.NAR, n); diff != "" {
		t.Errorf("Deleted.NAR: %s", diff)
	}
	checkDeleting(t, c, n.Key)
	checkLookup(t, c, n.Key, catalog.NAR{})
	checkLookup(t, c, alias, catalog.NAR{})
	checkInUse(t, c, n.Key, false)
	checkInUse(t, c, n.ListingKey, false)
	if got := unclaimedKeys(t, c, at(24*time.Hour)); len(got) != 0 {
		t.Errorf("UnclaimedNARs after the NAR was marked deleting = %q, want none", got)
	}
	dropNAR(t, c, n.Key)
	checkDeleting(t, c)

	// A shared NAR survives its first path.
	shared := newNAR("shared", at(0))
	a, b := newPath("shared-a", shared, "k:1"), newPath("shared-b", shared, "k:1")
	publish(t, c, shared, a)
	publish(t, c, shared, b)
	if d := deletePath(t, c, a.HashPart, cond); d.NAR != nil {
		t.Errorf("DeletePath(first of two paths) returned NAR %s", d.NAR.Key)
	}
	checkLookup(t, c, shared.Key, shared)
	if got := unclaimedKeys(t, c, at(24*time.Hour)); len(got) != 0 {
		t.Errorf("UnclaimedNARs with a path left = %q, want none", got)
	}
	if d := deletePath(t, c, b.HashPart, cond); d.NAR == nil || d.NAR.Key != shared.Key {
		t.Errorf("DeletePath(last of two paths) returned NAR %v, want %s", d.NAR, shared.Key)
	}

	// A NAR uploaded again since the judgement lives on, unclaimed.
	renewed := newNAR("renewed", at(0))
	r := newPath("renewed", renewed, "k:1")
	publish(t, c, renewed, r)
	renewed.CreatedAt = at(time.Hour) // not before CreatedBefore
	putNAR(t, c, renewed)
	if d := deletePath(t, c, r.HashPart, cond); d.NAR != nil {
		t.Errorf("DeletePath(path of a renewed NAR) returned NAR %s", d.NAR.Key)
	}
	checkLookup(t, c, renewed.Key, renewed)
	if got := unclaimedKeys(t, c, at(24*time.Hour)); !slices.Equal(got, []string{renewed.Key}) {
		t.Errorf("UnclaimedNARs = %q, want the renewed NAR", got)
	}

	// Without a condition the NAR goes whatever its age.
	young := newNAR("young", at(48*time.Hour))
	y := newPath("young", young, "k:1")
	publish(t, c, young, y)
	if d := deletePath(t, c, y.HashPart, catalog.DeleteCondition{}); d.NAR == nil || d.NAR.Key != young.Key {
		t.Errorf("DeletePath(no condition) returned NAR %v, want %s", d.NAR, young.Key)
	}
	checkDeleting(t, c, shared.Key, young.Key)
}

func testDeletePathDuringUpload(t *testing.T, c catalog.Catalog) {
	n := newNAR("uploading", at(0))
	p := newPath("uploading", n, "k:1")
	publish(t, c, n, p)
	// An upload of the same NAR begins (stamped early, so only the upload
	// itself protects the blobs) while the path is deleted.
	beginNAR(t, c, n.Key, n.ListingKey, at(0))
	if d := deletePath(t, c, p.HashPart, catalog.DeleteCondition{}); d.NAR != nil {
		t.Errorf("DeletePath during an upload of its NAR returned NAR %s", d.NAR.Key)
	}
	checkDeleting(t, c)
	checkInUse(t, c, n.Key, true)
	putNAR(t, c, n)
	checkLookup(t, c, n.Key, n)
	// Once uploaded it is an unclaimed NAR like any other.
	markDeleting(t, c, n.Key, at(time.Hour), true)
}

func testDeletePathRealisations(t *testing.T, c catalog.Catalog) {
	ctx := context.Background()
	out := newNAR("out", at(0))
	publish(t, c, out, newPath("out", out, "k:1"))
	other := newNAR("other", at(0))
	publish(t, c, other, newPath("other", other, "k:1"))
	bodies := map[string]string{
		"sha256:01!out": `{"id":"sha256:01!out","outPath":"` + HashPart("out") + `-out","signatures":[]}`,
		"sha256:02!out": `{"outPath":"/nix/store/` + HashPart("out") + `-out","id":"sha256:02!out"}`,
		"sha256:03!out": `{"id":"sha256:03!out","outPath":"` + HashPart("other") + `-other"}`,
		"sha256:04!out": `{}`,
		"sha256:05!out": `not json`,
	}
	for id, body := range bodies {
		if err := c.PutRealisation(ctx, id, []byte(body)); err != nil {
			t.Fatalf("PutRealisation(%s): %v", id, err)
		}
	}
	deletePath(t, c, HashPart("out"), catalog.DeleteCondition{})
	for id, body := range bodies {
		got, err := c.Realisation(ctx, id)
		gone := strings.Contains(body, HashPart("out"))
		switch {
		case gone && !errors.Is(err, catalog.ErrNotFound):
			t.Errorf("Realisation(%s) of the deleted path: %s, %v; want ErrNotFound", id, got, err)
		case !gone && (err != nil || string(got) != body):
			t.Errorf("Realisation(%s) of another path = %s, %v; want it kept", id, got, err)
		}
	}
}

func testDeletePathOrphanLog(t *testing.T, c catalog.Catalog) {
	mk := func(seed, deriver string) catalog.Path {
		n := newNAR(seed, at(0))
		p := newPath(seed, n, "k:1")
		p.Deriver = deriver
		publish(t, c, n, p)
		return p
	}
	drv := FakeHash("drv:multi", 32) + "-multi.drv"
	out, dev := mk("multi-out", drv), mk("multi-dev", drv) // two outputs of one derivation
	plain := mk("plain", "")
	single := mk("single", FakeHash("drv:single", 32)+"-single.drv")
	for _, tc := range []struct {
		p    catalog.Path
		want string
	}{
		{out, ""}, // dev still has the deriver
		{dev, drv},
		{plain, ""},
		{single, single.Deriver},
	} {
		if d := deletePath(t, c, tc.p.HashPart, catalog.DeleteCondition{}); d.OrphanLog != tc.want {
			t.Errorf("DeletePath(%s).OrphanLog = %q, want %q", tc.p.StorePath, d.OrphanLog, tc.want)
		}
	}
}

func testDeletePathPins(t *testing.T, c catalog.Catalog) {
	ctx := context.Background()
	for _, seed := range []string{"v1", "v2", "temp"} {
		n := newNAR(seed, at(0))
		publish(t, c, n, newPath(seed, n, "k:1"))
	}
	addPin(t, c, "rel", "v1", at(0), time.Time{}, 1)
	addPin(t, c, "rel", "v2", at(time.Minute), time.Time{}, 1)
	addPin(t, c, "trial", "v2", at(0), at(time.Hour), 0)
	addPin(t, c, "tmp", "temp", at(0), at(time.Hour), 0)

	for _, tc := range []struct {
		seed string
		cond catalog.DeleteCondition
	}{
		{"v2", catalog.DeleteCondition{}},
		{"v2", catalog.DeleteCondition{CreatedBefore: at(2 * time.Hour)}}, // rel never expires
		{"v1", catalog.DeleteCondition{CreatedBefore: at(2 * time.Hour)}}, // a kept previous pin pins too
		{"temp", catalog.DeleteCondition{}},                               // without a time every pin counts
		{"temp", catalog.DeleteCondition{CreatedBefore: at(time.Hour - time.Millisecond)}},
	} {
		if _, err := c.DeletePath(ctx, HashPart(tc.seed), tc.cond); !errors.Is(err, catalog.ErrPinned) {
			t.Errorf("DeletePath(%s, %+v): error %v, want ErrPinned", tc.seed, tc.cond, err)
		}
	}
	// A pin expired by CreatedBefore no longer pins, and goes.
	deletePath(t, c, HashPart("temp"), catalog.DeleteCondition{CreatedBefore: at(time.Hour)})
	// IgnorePins removes the path and its pins; the previous pin of the
	// name becomes current.
	deletePath(t, c, HashPart("v2"), catalog.DeleteCondition{IgnorePins: true})
	checkPins(t, c, wantPin{"rel", "v1", at(0), time.Time{}, true})
}

// testDeletePaths deletes a chain in one batch, referrers first, with a
// refused path in the middle that does not stop the others, then drops
// the NARs it freed in one batch.
func testDeletePaths(t *testing.T, c catalog.Catalog) {
	ctx := context.Background()
	cond := catalog.DeleteCondition{CreatedBefore: at(time.Hour), UsedBefore: at(time.Hour)}
	var nars []catalog.NAR
	for _, seed := range []string{"c", "b", "a", "pinned"} {
		nars = append(nars, newNAR("batch-"+seed, at(0)))
	}
	publish(t, c, nars[0], newPath("batch-c", nars[0], "k:1"))
	publish(t, c, nars[1], newPath("batch-b", nars[1], "k:1", "batch-c"))
	publish(t, c, nars[2], newPath("batch-a", nars[2], "k:1", "batch-b"))
	publish(t, c, nars[3], newPath("batch-pinned", nars[3], "k:1"))
	addPin(t, c, "keep", "batch-pinned", at(0), time.Time{}, 0)

	order := []string{HashPart("batch-a"), HashPart("batch-pinned"), HashPart("batch-absent"), HashPart("batch-b"), HashPart("batch-c")}
	res, err := c.DeletePaths(ctx, order, cond)
	if err != nil {
		t.Fatalf("DeletePaths: %v", err)
	}
	if len(res) != len(order) {
		t.Fatalf("DeletePaths returned %d results for %d paths", len(res), len(order))
	}
	wantErr := []error{nil, catalog.ErrPinned, catalog.ErrNotFound, nil, nil}
	var freed []string
	for i, r := range res {
		if !errors.Is(r.Err, wantErr[i]) || (wantErr[i] == nil) != (r.Err == nil) {
			t.Errorf("result %d: error %v, want %v", i, r.Err, wantErr[i])
		}
		if r.Err == nil {
			if r.Path.HashPart != order[i] || r.NAR == nil {
				t.Errorf("result %d: deleted %q with NAR %v", i, r.Path.HashPart, r.NAR)
			} else {
				freed = append(freed, r.NAR.Key)
			}
			checkAbsent(t, c, order[i])
		}
	}
	checkPath(t, c, newPath("batch-pinned", nars[3], "k:1"))
	checkDeleting(t, c, freed...)
	if err := c.DropNARs(ctx, freed); err != nil {
		t.Fatalf("DropNARs: %v", err)
	}
	checkDeleting(t, c)

	// Out of order, the referenced path is refused and the rest goes on.
	publish(t, c, nars[0], newPath("batch-c", nars[0], "k:1"))
	publish(t, c, nars[1], newPath("batch-b", nars[1], "k:1", "batch-c"))
	res, err = c.DeletePaths(ctx, []string{HashPart("batch-c"), HashPart("batch-b")}, catalog.DeleteCondition{})
	if err != nil {
		t.Fatalf("DeletePaths: %v", err)
	}
	if !errors.Is(res[0].Err, catalog.ErrReferenced) || res[1].Err != nil {
		t.Fatalf("DeletePaths out of order: %v, %v", res[0].Err, res[1].Err)
	}
	checkAbsent(t, c, HashPart("batch-b"))
}
