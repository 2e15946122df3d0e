package catalogtest

import (
	"context"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/catalog/synth"
)

// BenchPaths is the size of the catalogs the benchmarks run on.
const BenchPaths = 100_000

// BenchNarInfoLookups looks up the narinfos of hits, a catalog's published
// paths, and of random misses, serially and in parallel. Every hit is read
// once first so that every sub-benchmark starts warm.
func BenchNarInfoLookups(b *testing.B, c catalog.Catalog, r *rand.Rand, hits []string) {
	misses := make([]string, 4096)
	for i := range misses {
		misses[i] = synth.Hash(r, 32)
	}
	hits = append([]string(nil), hits...)
	r.Shuffle(len(hits), func(i, j int) { hits[i], hits[j] = hits[j], hits[i] })
	ctx := context.Background()
	for _, h := range hits {
		if _, err := c.NarInfo(ctx, h); err != nil {
			b.Fatalf("NarInfo(%s): %v", h, err)
		}
	}
	for _, bc := range []struct {
		name string
		keys []string
		hit  bool
	}{{"hit", hits, true}, {"miss", misses, false}} {
		check := func(b *testing.B, h string, err error) {
			if (err == nil) != bc.hit {
				b.Fatalf("NarInfo(%s): %v", h, err)
			}
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				h := bc.keys[i%len(bc.keys)]
				_, err := c.NarInfo(ctx, h)
				check(b, h, err)
				i++
			}
		})
		b.Run(bc.name+"-parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := rand.IntN(len(bc.keys))
				for pb.Next() {
					h := bc.keys[i%len(bc.keys)]
					_, err := c.NarInfo(ctx, h)
					check(b, h, err)
					i++
				}
			})
		})
	}
}

// BenchPublish publishes paths with three references each into base, the
// NARs recorded beforehand; every Publish is one durable commit.
func BenchPublish(b *testing.B, c catalog.Catalog, r *rand.Rand, base []string) {
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		b.StopTimer()
		h := synth.Hash(r, 32)
		n := catalog.NAR{
			Key: "nar/" + synth.Hash(r, 52) + ".nar.zst", Compression: "zstd",
			FileHash: "sha256:x", FileSize: 1, NarHash: "sha256:" + h, NarSize: 2,
			CreatedAt: time.UnixMilli(int64(i)),
		}
		if err := c.PutNAR(ctx, n); err != nil {
			b.Fatal(err)
		}
		refs := []string{base[r.IntN(len(base))], base[r.IntN(len(base))], base[r.IntN(len(base))], h}
		p := catalog.Path{
			HashPart: h, StorePath: "/nix/store/" + h + "-bench", NARKey: n.Key,
			NarHash: n.NarHash, NarSize: n.NarSize, References: refs,
			NarInfo: synth.NarInfo(h, n.Key, refs),
		}
		b.StartTimer()
		if err := c.Publish(ctx, p, catalog.PublishOptions{}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchWalkGraph walks a catalog of paths published paths, as a
// collection's mark phase does, and reports the time and allocations per
// path visited.
func BenchWalkGraph(b *testing.B, c catalog.Catalog, paths int) {
	ctx := context.Background()
	walk := func() (nodes int) {
		err := c.WalkGraph(ctx, func(catalog.GraphNode) error {
			nodes++
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		return nodes
	}
	walk() // warm the caches
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	walks := 0
	for b.Loop() {
		if n := walk(); n != paths {
			b.Fatalf("walked %d paths, want %d", n, paths)
		}
		walks++
	}
	runtime.ReadMemStats(&after)
	visited := float64(walks * paths)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/visited, "ns/path")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/visited, "allocs/path")
}

// BenchDeletePaths deletes the given paths, each with its NAR, in batches
// of batch paths, one durable transaction per batch (a batch of 1 calls
// DeletePath), from the end: later paths reference earlier ones.
func BenchDeletePaths(b *testing.B, c catalog.Catalog, hashes []string, batch int) {
	ctx := context.Background()
	cond := catalog.DeleteCondition{CreatedBefore: time.Now(), UsedBefore: time.Now()}
	b.ReportAllocs()
	next := len(hashes)
	for b.Loop() {
		if next < batch {
			b.Fatal("ran out of paths to delete")
		}
		todo := make([]string, 0, batch)
		for i := next - 1; i >= next-batch; i-- {
			todo = append(todo, hashes[i])
		}
		var res []catalog.DeleteResult
		if batch == 1 {
			d, err := c.DeletePath(ctx, todo[0], cond)
			res = append(res, catalog.DeleteResult{Deleted: d, Err: err})
		} else {
			var err error
			if res, err = c.DeletePaths(ctx, todo, cond); err != nil {
				b.Fatal(err)
			}
		}
		for i, d := range res {
			if d.Err != nil || d.NAR == nil {
				b.Fatalf("deleting %s: %v, NAR %v", todo[i], d.Err, d.NAR)
			}
		}
		next -= batch
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(len(hashes)-next), "ns/path")
}

// BenchRecordUse records batches of 10,000 uses (the server's flush) of
// the given paths (by hash part) and NARs (by key).
func BenchRecordUse(b *testing.B, c catalog.Catalog, r *rand.Rand, hashes, keys []string) {
	ctx := context.Background()
	const batch = 10_000
	for _, bc := range []struct {
		name  string
		names []string
		nars  bool
	}{{"paths", hashes, false}, {"nars", keys, true}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			t := time.Now()
			for b.Loop() {
				b.StopTimer()
				t = t.Add(time.Second) // every use moves a path forward
				uses := make(map[string]time.Time, batch)
				for len(uses) < batch {
					uses[bc.names[r.IntN(len(bc.names))]] = t
				}
				b.StartTimer()
				var err error
				if bc.nars {
					err = c.RecordUse(ctx, nil, uses)
				} else {
					err = c.RecordUse(ctx, uses, nil)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/use")
		})
	}
}
