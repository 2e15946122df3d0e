package sqlite

import (
	"context"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog"
)

// benchPaths is the size of the catalogs the GC benchmarks run on.
const benchPaths = 100_000

// spreadLastUse gives the paths last-use times spread over a year before
// now, as a long-running cache has.
func spreadLastUse(b *testing.B, c *Catalog, now time.Time) {
	b.Helper()
	if _, err := c.writer.Exec(`UPDATE paths SET last_used = ? - abs(random() % ?)`,
		now.UnixMilli(), (365 * 24 * time.Hour).Milliseconds()); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkWalkGraph walks a catalog of 100,000 paths with up to 3
// references each, as a collection's mark phase does.
func BenchmarkWalkGraph(b *testing.B) {
	c := openB(b)
	hashes := fillPaths(b, c, rand.New(rand.NewPCG(5, 6)), benchPaths)
	spreadLastUse(b, c, time.Now())
	ctx := context.Background()
	walk := func() (nodes, refs int) {
		err := c.WalkGraph(ctx, func(g catalog.GraphNode) error {
			nodes++
			refs += len(g.References)
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		return nodes, refs
	}
	walk() // warm the page cache
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	walks := 0
	for b.Loop() {
		if n, _ := walk(); n != len(hashes) {
			b.Fatalf("walked %d paths, want %d", n, len(hashes))
		}
		walks++
	}
	runtime.ReadMemStats(&after)
	visited := float64(walks * len(hashes))
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/visited, "ns/path")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/visited, "allocs/path")
}

// BenchmarkRecordUse records batches of 10,000 uses (the server's flush)
// in a catalog of 100,000 paths, by hash part and by NAR key.
func BenchmarkRecordUse(b *testing.B) {
	c := openB(b)
	r := rand.New(rand.NewPCG(7, 8))
	hashes := fillPaths(b, c, r, benchPaths)
	var keys []string
	rows, err := c.reader.Query(`SELECT n.key FROM paths p JOIN nars n ON n.id = p.nar_id`)
	if err != nil {
		b.Fatal(err)
	}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			b.Fatal(err)
		}
		keys = append(keys, k)
	}
	rows.Close()
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

// BenchmarkDeletePath deletes paths, each with its NAR, one durable
// transaction each, from a catalog of 100,000 paths: the sweep.
func BenchmarkDeletePath(b *testing.B) {
	c := openB(b)
	hashes := fillPaths(b, c, rand.New(rand.NewPCG(9, 10)), benchPaths)
	ctx := context.Background()
	cond := catalog.DeleteCondition{CreatedBefore: time.Now(), UsedBefore: time.Now()}
	b.ReportAllocs()
	next := len(hashes) - 1 // later paths reference earlier ones: delete from the end
	for b.Loop() {
		if next < 0 {
			b.Fatal("ran out of paths to delete")
		}
		d, err := c.DeletePath(ctx, hashes[next], cond)
		if err != nil {
			b.Fatal(err)
		}
		if d.NAR == nil {
			b.Fatalf("DeletePath(%s) kept its NAR", hashes[next])
		}
		next--
	}
}

// BenchmarkStats computes `cached stats` over a catalog of 100,000 paths.
func BenchmarkStats(b *testing.B) {
	c := openB(b)
	fillPaths(b, c, rand.New(rand.NewPCG(11, 12)), benchPaths)
	now := time.Now()
	spreadLastUse(b, c, now)
	ctx := context.Background()
	day := 24 * time.Hour
	ages := []time.Duration{day, 7 * day, 30 * day, 90 * day, 365 * day}
	b.ReportAllocs()
	for b.Loop() {
		s, err := c.Stats(ctx, now, ages)
		if err != nil {
			b.Fatal(err)
		}
		if s.Paths != benchPaths {
			b.Fatalf("Stats counted %d paths, want %d", s.Paths, benchPaths)
		}
	}
}
