package gc

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/catalog/sqlite"
	"github.com/nix-cached/cached/nixbase32"
	"github.com/nix-cached/cached/storage/memory"
)

// benchPaths is the size of BenchmarkCollect's cache.
const benchPaths = 100_000

// benchNow is the synthetic cache's present.
var benchNow = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// benchNix32 returns the nix32 of sha256(s), cut to n bytes.
func benchNix32(s string, n int) string {
	sum := sha256.Sum256([]byte(s))
	return nixbase32.EncodeToString(sum[:n])
}

// fillCatalog publishes n synthetic paths through the catalog interface:
// even ones unused for 400 days, odd ones used 10 days ago, each
// referencing 1–3 earlier paths of its own half (so exactly half are dead).
func fillCatalog(b *testing.B, cat catalog.Catalog, n int) {
	b.Helper()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	hashes := make([]string, n)
	for i := range n {
		h := benchNix32(fmt.Sprint("path ", i), 20)
		hashes[i] = h
		fileHash := benchNix32(fmt.Sprint("file ", i), 32)
		created := benchNow.Add(-10 * day)
		if i%2 == 0 {
			created = benchNow.Add(-400 * day)
		}
		nar := catalog.NAR{
			Key:         "nar/" + fileHash + ".nar.zst",
			Compression: "zstd",
			FileHash:    "sha256:" + fileHash,
			FileSize:    int64(1000 + rng.IntN(100_000)),
			NarHash:     "sha256:" + benchNix32(fmt.Sprint("nar ", i), 32),
			NarSize:     200_000,
			ListingKey:  "ls/" + benchNix32(fmt.Sprint("nar ", i), 32) + ".ls",
			CreatedAt:   created,
		}
		if err := cat.PutNAR(ctx, nar); err != nil {
			b.Fatal(err)
		}
		var refs []string
		if i >= 2 {
			for range 1 + rng.IntN(3) {
				j := rng.IntN(i/2)*2 + i%2 // an earlier path of the same half
				refs = append(refs, hashes[j])
			}
		}
		p := catalog.Path{
			HashPart:   h,
			StorePath:  "/nix/store/" + h + "-synthetic-package-" + fmt.Sprint(i),
			NARKey:     nar.Key,
			NarHash:    nar.NarHash,
			NarSize:    nar.NarSize,
			References: refs,
			Deriver:    h + "-synthetic-package.drv",
			NarInfo:    "StorePath: /nix/store/" + h + "-synthetic-package\n",
			CreatedAt:  created,
		}
		if err := cat.Publish(ctx, p, catalog.PublishOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// copyDB copies a closed SQLite database (and its WAL, if any).
func copyDB(b *testing.B, from, to string) {
	b.Helper()
	for _, suffix := range []string{"", "-wal"} {
		src, err := os.Open(from + suffix)
		if os.IsNotExist(err) && suffix != "" {
			continue
		}
		if err != nil {
			b.Fatal(err)
		}
		dst, err := os.Create(to + suffix)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(dst, src); err != nil {
			b.Fatal(err)
		}
		src.Close()
		if err := dst.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// heapPeak samples the heap in use until stopped, and returns the largest
// HeapAlloc seen.
func heapPeak() (stop func() uint64) {
	var peak atomic.Uint64
	sample := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.HeapAlloc > peak.Load() {
			peak.Store(ms.HeapAlloc)
		}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				sample()
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		sample()
		return peak.Load()
	}
}

// BenchmarkCollect plans and runs collections of a synthetic cache of
// 100,000 paths, half of them dead. Run starts each time from a copy of
// the same database. Metrics: ns per path seen, and the peak heap.
func BenchmarkCollect(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	base := filepath.Join(dir, "base.db")
	cat, err := sqlite.Open(ctx, base)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	fillCatalog(b, cat, benchPaths)
	b.Logf("filled %d paths in %v", benchPaths, time.Since(start))
	if err := cat.Close(); err != nil {
		b.Fatal(err)
	}
	opt := Options{BlobGrace: -1, Now: func() time.Time { return benchNow }, Holder: "bench", Logger: slog.New(slog.DiscardHandler)}

	b.Run("Plan", func(b *testing.B) {
		cat, err := sqlite.Open(ctx, base)
		if err != nil {
			b.Fatal(err)
		}
		defer cat.Close()
		col, err := New(cat, memory.New(), opt)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		stop := heapPeak()
		b.ReportAllocs()
		for b.Loop() {
			p, err := col.Plan(ctx)
			if err != nil || p.Paths != benchPaths || len(p.Remove) != benchPaths/2 {
				b.Fatalf("plan of %d paths removes %d: %v", p.Paths, len(p.Remove), err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchPaths), "ns/path")
		b.ReportMetric(float64(stop())/(1<<20), "peak-heap-MB")
	})

	b.Run("Run", func(b *testing.B) {
		runtime.GC()
		stop := heapPeak()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			b.StopTimer()
			i++
			db := filepath.Join(dir, fmt.Sprintf("run%d.db", i))
			copyDB(b, base, db)
			cat, err := sqlite.Open(ctx, db)
			if err != nil {
				b.Fatal(err)
			}
			col, err := New(cat, memory.New(), opt)
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			res, err := col.Run(ctx)
			b.StopTimer()
			if err != nil || res.Removed != benchPaths/2 {
				b.Fatalf("run removed %d paths: %v", res.Removed, err)
			}
			cat.Close()
			os.Remove(db)
			b.StartTimer()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchPaths), "ns/path")
		b.ReportMetric(float64(stop())/(1<<20), "peak-heap-MB")
	})
}
