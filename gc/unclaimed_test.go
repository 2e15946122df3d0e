package gc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/ingest"
	"github.com/nix-cached/cached/nixbase32"
)

// key returns a NAR or listing key made of one repeated nix32 digit.
func key(prefix string, digit byte, ext string) string {
	return prefix + strings.Repeat(string(digit), 52) + ext
}

func TestSweepUnclaimed(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, ingest.ModeZstd)
	claimed := f.node("claimed")
	unclaimed, unclaimedNI := f.upload(storePath("unclaimed"), ingest.CompXZ, []byte("never claimed"))
	renewed, _ := f.upload(storePath("renewed"), ingest.CompXZ, []byte("uploaded again"))
	orphanNAR, orphanLs := key("nar/", '0', ".nar.zst"), key("ls/", '0', ".ls")
	f.put(orphanNAR, []byte("left by a crash"))
	f.put(orphanLs, []byte(`{"version":1}`))
	// An upload that crashed after storing its blobs: a pending record.
	crashed, crashedLs := key("nar/", '1', ".nar.zst"), key("ls/", '1', ".ls")
	if err := f.cat.BeginNAR(ctx, crashed, crashedLs, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	f.put(crashed, []byte("half an upload"))
	f.put(crashedLs, []byte(`{"version":1,"root":`))
	var wantBytes int64
	for _, k := range []string{unclaimed.Key, unclaimed.ListingKey, orphanNAR, orphanLs, crashed, crashedLs} {
		wantBytes += int64(len(f.read(k)))
	}
	col := f.collector(Options{})

	f.clock.Advance(23 * time.Hour)
	if res, err := col.SweepUnclaimed(ctx); err != nil || res != (SweepResult{}) {
		t.Fatalf("a sweep within the lease removed %+v, %v", res, err)
	}
	f.upload(storePath("renewed"), ingest.CompXZ, []byte("uploaded again")) // the lease starts over
	young := key("nar/", '2', ".nar.zst")
	f.put(young, []byte("an orphan younger than the lease"))
	f.clock.Advance(2 * time.Hour)

	res, err := col.SweepUnclaimed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := (SweepResult{NARs: 2, Blobs: 2, Bytes: wantBytes}); res != want {
		t.Errorf("sweep removed %+v, want %+v", res, want)
	}
	for _, k := range []string{claimed.NARKey, claimed.Listing, claimed.Log, renewed.Key, renewed.ListingKey, young} {
		if !f.stored(k) {
			t.Errorf("%s was removed", k)
		}
	}
	for _, k := range []string{unclaimed.Key, unclaimed.ListingKey, orphanNAR, orphanLs, crashed, crashedLs} {
		if f.stored(k) {
			t.Errorf("%s was kept", k)
		}
	}
	if _, err := f.cat.LookupNAR(ctx, unclaimedNI.URL); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("the swept NAR's record (by alias) survived: %v", err)
	}
	if _, err := f.ing.NarInfo(ctx, storePath("unclaimed")[:32], []byte(unclaimedNI.String())); !errors.Is(err, ingest.ErrInvalid) {
		t.Errorf("publishing a swept NAR: %v, want ErrInvalid", err)
	}
	f.requireAlive(claimed)
	f.requireClean()
	if res, err := col.SweepUnclaimed(ctx); err != nil || res != (SweepResult{}) {
		t.Errorf("a second sweep removed %+v, %v", res, err)
	}
}

// busyCatalog tells when a BeginNAR was refused with ErrBusy.
type busyCatalog struct {
	catalog.Catalog
	once sync.Once
	busy chan struct{}
}

func (c *busyCatalog) BeginNAR(ctx context.Context, key, listingKey string, at time.Time) error {
	err := c.Catalog.BeginNAR(ctx, key, listingKey, at)
	if errors.Is(err, catalog.ErrBusy) {
		c.once.Do(func() { close(c.busy) })
	}
	return err
}

// TestSweepUnclaimedRacingUpload: an upload of a NAR being swept waits
// until the deletion is done, then stores it again; the sweep never
// deletes what the upload wrote.
func TestSweepUnclaimedRacingUpload(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, ingest.ModeZstd)
	text := []byte("uploaded while swept")
	n, ni := f.upload(storePath("late"), ingest.CompXZ, text)
	file := compress(t, ingest.CompXZ, makeNAR(t, text))
	sum := sha256.Sum256(file)
	name := nixbase32.EncodeToString(sum[:]) + ".nar.xz"
	f.clock.Advance(25 * time.Hour)

	bc := &busyCatalog{Catalog: f.cat, busy: make(chan struct{})}
	ing2, err := ingest.New(f.store, bc, ingest.Options{Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	col := f.collector(Options{})
	uploaded := make(chan error, 1)
	hooked := false
	col.beforeNARDelete = func(key string) {
		if key != n.Key || hooked {
			return
		}
		hooked = true
		now := f.clock.Now()
		if err := f.cat.BeginNAR(ctx, n.Key, n.ListingKey, now); !errors.Is(err, catalog.ErrBusy) {
			t.Errorf("BeginNAR of the NAR being deleted: %v, want ErrBusy", err)
		}
		if err := f.cat.BeginNAR(ctx, key+"x", n.ListingKey, now); !errors.Is(err, catalog.ErrBusy) {
			t.Errorf("BeginNAR of another NAR with the listing being deleted: %v, want ErrBusy", err)
		}
		go func() {
			_, err := ing2.NAR(ctx, name, bytes.NewReader(file), int64(len(file)))
			uploaded <- err
		}()
		select {
		case <-bc.busy:
		case err := <-uploaded:
			t.Errorf("the upload finished during the deletion: %v", err)
			uploaded <- err
		case <-time.After(time.Minute):
			t.Error("the upload never asked for the key")
		}
	}
	res, err := col.SweepUnclaimed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !hooked || res.NARs != 1 {
		t.Fatalf("swept %+v (hook ran: %v), want the unclaimed NAR", res, hooked)
	}
	if err := <-uploaded; err != nil {
		t.Fatalf("the upload racing the sweep failed: %v", err)
	}
	if !f.stored(n.Key) || !f.stored(n.ListingKey) {
		t.Fatal("the re-uploaded NAR's blobs are gone")
	}
	if _, err := f.ing.NarInfo(ctx, storePath("late")[:32], []byte(ni.String())); err != nil {
		t.Fatalf("publishing the re-uploaded NAR: %v", err)
	}
	f.requireClean()
}
