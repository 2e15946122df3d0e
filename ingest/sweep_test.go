package ingest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/storage"
)

func TestSweepUnclaimed(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, func(o *Options) { o.UploadLease = 24 * time.Hour })
	claimed := f.upload(t, pathA)
	if _, err := f.publish(claimed); err != nil {
		t.Fatal(err)
	}
	unclaimed := f.upload(t, pathB)
	renewed := f.upload(t, pathC)
	orphan := "nar/" + strings.Repeat("0", 52) + ".nar.zst"
	if _, err := storage.Put(ctx, f.store, orphan, strings.NewReader("left by a crash")); err != nil {
		t.Fatal(err)
	}

	f.clock.Advance(23 * time.Hour)
	if res, err := f.ing.SweepUnclaimed(ctx); err != nil || res != (SweepResult{}) {
		t.Fatalf("sweep within the lease removed %+v, %v", res, err)
	}
	f.upload(t, pathC) // uploaded again: the lease starts over
	f.clock.Advance(2 * time.Hour)
	res, err := f.ing.SweepUnclaimed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.NARs != 1 || res.Blobs != 1 {
		t.Fatalf("sweep removed %+v, want 1 NAR and 1 orphan blob", res)
	}
	left := keys(t, f.store)
	for _, k := range []string{claimed.nar.Key, claimed.nar.ListingKey, renewed.nar.Key, renewed.nar.ListingKey} {
		if !slices.Contains(left, k) {
			t.Errorf("%s was removed", k)
		}
	}
	for _, k := range []string{unclaimed.nar.Key, unclaimed.nar.ListingKey, orphan} {
		if slices.Contains(left, k) {
			t.Errorf("%s was kept", k)
		}
	}
	if _, err := f.cat.LookupNAR(ctx, unclaimed.ni.URL); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("the unclaimed NAR's record (by alias) survived: %v", err)
	}
	if _, err := f.publish(unclaimed); !errors.Is(err, ErrInvalid) {
		t.Errorf("publishing a swept NAR: %v", err)
	}
	if _, err := f.cat.NarInfo(ctx, pathA[:32]); err != nil {
		t.Errorf("the published path is gone: %v", err)
	}
}
