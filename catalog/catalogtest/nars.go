package catalogtest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog"
)

func testLookupNAR(t *testing.T, c catalog.Catalog) {
	ctx := context.Background()
	n := newNAR("hello", at(0))
	xz := "nar/" + FakeHash("xz:hello", 52) + ".nar.xz"
	bz := "nar/" + FakeHash("bz:hello", 52) + ".nar.bz2"
	putNAR(t, c, n, xz, bz)
	other := newNAR("other", at(time.Second))
	other.ListingKey = ""
	putNAR(t, c, other)
	for _, name := range []string{n.Key, xz, bz} {
		got, err := c.LookupNAR(ctx, name)
		if err != nil {
			t.Fatalf("LookupNAR(%s): %v", name, err)
		}
		if d := diffNAR(got, n); d != "" {
			t.Errorf("LookupNAR(%s): %s", name, d)
		}
	}
	got, err := c.LookupNAR(ctx, other.Key)
	if err != nil {
		t.Fatalf("LookupNAR(%s): %v", other.Key, err)
	}
	if d := diffNAR(got, other); d != "" {
		t.Errorf("LookupNAR(%s) without listing: %s", other.Key, d)
	}
}

func testRenewNAR(t *testing.T, c catalog.Catalog) {
	ctx := context.Background()
	a, b := newNAR("a", at(0)), newNAR("b", at(0))
	aliasA := "nar/" + FakeHash("alias:a", 52) + ".nar.xz"
	shared := "nar/" + FakeHash("alias:shared", 52) + ".nar.xz"
	putNAR(t, c, a, aliasA)
	putNAR(t, c, b, shared)

	renewed := a
	renewed.CreatedAt = at(time.Hour)
	renewed.ListingKey = ""
	renewed.FileSize++
	putNAR(t, c, renewed, shared)

	for _, tc := range []struct {
		name string
		want catalog.NAR
	}{
		{a.Key, renewed},
		{aliasA, renewed}, // an alias not repeated keeps pointing at its NAR
		{shared, renewed}, // repointed from b
		{b.Key, b},
	} {
		got, err := c.LookupNAR(ctx, tc.name)
		if err != nil {
			t.Fatalf("LookupNAR(%s): %v", tc.name, err)
		}
		if d := diffNAR(got, tc.want); d != "" {
			t.Errorf("LookupNAR(%s) after renewal: %s", tc.name, d)
		}
	}
}

func testLookupUnknownNAR(t *testing.T, c catalog.Catalog) {
	putNAR(t, c, newNAR("known", at(0)))
	for _, name := range []string{"nar/" + FakeHash("unknown", 52) + ".nar.zst", ""} {
		if _, err := c.LookupNAR(context.Background(), name); !errors.Is(err, catalog.ErrNotFound) {
			t.Errorf("LookupNAR(%q) error = %v, want ErrNotFound", name, err)
		}
	}
}

func testUnclaimedNARs(t *testing.T, c catalog.Catalog) {
	ctx := context.Background()
	oldFree := newNAR("old-free", at(0))
	olderFree := newNAR("older-free", at(-time.Minute))
	oldClaimed := newNAR("old-claimed", at(0))
	newFree := newNAR("new-free", at(2*time.Hour))
	putNAR(t, c, oldFree)
	putNAR(t, c, olderFree)
	putNAR(t, c, newFree)
	publish(t, c, oldClaimed, newPath("old-claimed", oldClaimed, "k:1"))

	got, err := c.UnclaimedNARs(ctx, at(time.Hour))
	if err != nil {
		t.Fatalf("UnclaimedNARs: %v", err)
	}
	want := []catalog.NAR{olderFree, oldFree}
	slices.SortFunc(got, func(x, y catalog.NAR) int { return x.CreatedAt.Compare(y.CreatedAt) })
	if len(got) != len(want) {
		t.Fatalf("UnclaimedNARs(t0+1h) = %d NARs %v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if d := diffNAR(got[i], want[i]); d != "" {
			t.Errorf("UnclaimedNARs(t0+1h)[%d]: %s", i, d)
		}
	}
	// The bound is strict: a NAR created exactly at before is not listed.
	got, err = c.UnclaimedNARs(ctx, at(-time.Minute))
	if err != nil {
		t.Fatalf("UnclaimedNARs: %v", err)
	}
	if len(got) != 0 {
		t.Errorf("UnclaimedNARs(t0-1m) = %v, want none", got)
	}
}

func testBlobInUse(t *testing.T, c catalog.Catalog) {
	ctx := context.Background()
	n := newNAR("listed", at(0))
	bare := newNAR("bare", at(0))
	bare.ListingKey = ""
	alias := "nar/" + FakeHash("alias:listed", 52) + ".nar.xz"
	putNAR(t, c, n, alias)
	putNAR(t, c, bare)
	for _, tc := range []struct {
		key  string
		want bool
	}{
		{n.Key, true},
		{n.ListingKey, true},
		{bare.Key, true},
		{"", false},
		{alias, false}, // an alias names no blob
		{"nar/" + FakeHash("unknown", 52) + ".nar.zst", false},
		{HashPart("unknown") + ".ls", false},
	} {
		got, err := c.BlobInUse(ctx, tc.key)
		if err != nil {
			t.Fatalf("BlobInUse(%q): %v", tc.key, err)
		}
		if got != tc.want {
			t.Errorf("BlobInUse(%q) = %v, want %v", tc.key, got, tc.want)
		}
	}
}
