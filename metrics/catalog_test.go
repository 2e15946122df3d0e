package metrics

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/catalog/sqlite"
)

// The catalog gauges show what a real catalog holds and the collection
// it recorded last, whoever ran it, refreshed after CatalogEvery.
func TestCatalogGauges(t *testing.T) {
	m, reg := newTest(t)
	if v := testutil.ToFloat64(m.catalogGauges()[0]); v != -1 {
		t.Errorf("cached_stored_paths before Catalog: %v, want -1", v)
	}
	ctx := context.Background()
	cat, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "cached.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	clock := time.Unix(1700000000, 0)
	m.now = func() time.Time { return clock }
	m.Catalog(cat)

	n := catalog.NAR{Key: "nar/" + strings.Repeat("1", 52) + ".nar.zst", Compression: "zstd",
		FileHash: "sha256:" + strings.Repeat("1", 52), FileSize: 1000, NarHash: "sha256:" + strings.Repeat("2", 52),
		NarSize: 4000, CreatedAt: clock}
	if err := cat.PutNAR(ctx, n); err != nil {
		t.Fatal(err)
	}
	hash := strings.Repeat("a", 32)
	if err := cat.Publish(ctx, catalog.Path{HashPart: hash, StorePath: "/nix/store/" + hash + "-x", NARKey: n.Key,
		NarHash: n.NarHash, NarSize: n.NarSize, NarInfo: "StorePath: /nix/store/" + hash + "-x\n", CreatedAt: clock}, catalog.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP cached_stored_paths Published store paths. Read from the catalog at most every 30 s; -1 when it cannot be read.
# TYPE cached_stored_paths gauge
cached_stored_paths 1
# HELP cached_stored_bytes Bytes of the NAR files named by published paths. Read from the catalog at most every 30 s; -1 when it cannot be read.
# TYPE cached_stored_bytes gauge
cached_stored_bytes 1000
# HELP cached_gc_recorded_removed_paths Paths it removed. Of the last collection the catalog recorded, wherever it ran (a replica or cached gc); -1 before the first.
# TYPE cached_gc_recorded_removed_paths gauge
cached_gc_recorded_removed_paths -1
`
	names := []string{"cached_stored_paths", "cached_stored_bytes", "cached_gc_recorded_removed_paths"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}

	// A collection by another process (cached gc): seen once the cached
	// totals are older than CatalogEvery.
	if err := cat.RecordGCRun(ctx, catalog.GCRun{Holder: "cli", Started: clock, Finished: clock.Add(3 * time.Second),
		PathsRemoved: 7, BytesRemoved: 7000, LivePaths: 1, LiveBytes: 1000}); err != nil {
		t.Fatal(err)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Errorf("read again within CatalogEvery: %v", err)
	}
	clock = clock.Add(CatalogEvery)
	want = strings.Replace(want, "cached_gc_recorded_removed_paths -1", "cached_gc_recorded_removed_paths 7", 1)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP cached_gc_recorded_duration_seconds How long it took. Of the last collection the catalog recorded, wherever it ran (a replica or cached gc); -1 before the first.
# TYPE cached_gc_recorded_duration_seconds gauge
cached_gc_recorded_duration_seconds 3
`), "cached_gc_recorded_duration_seconds"); err != nil {
		t.Error(err)
	}
}
