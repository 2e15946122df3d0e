package sqlite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog/catalogtest"
)

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
	fillPaths(b, c, rand.New(rand.NewPCG(5, 6)), catalogtest.BenchPaths)
	spreadLastUse(b, c, time.Now())
	catalogtest.BenchWalkGraph(b, c, catalogtest.BenchPaths)
}

// BenchmarkRecordUse records batches of 10,000 uses (the server's flush)
// in a catalog of 100,000 paths, by hash part and by NAR key.
func BenchmarkRecordUse(b *testing.B) {
	c := openB(b)
	r := rand.New(rand.NewPCG(7, 8))
	hashes, keys := fillPaths(b, c, r, catalogtest.BenchPaths)
	catalogtest.BenchRecordUse(b, c, r, hashes, keys)
}

// BenchmarkDeletePaths deletes paths from a catalog of 100,000, each with
// its NAR: one at a time with DeletePath, and in batches of 256 (the
// sweep) with DeletePaths.
func BenchmarkDeletePaths(b *testing.B) {
	for _, batch := range []int{1, 256} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			c := openB(b)
			hashes, _ := fillPaths(b, c, rand.New(rand.NewPCG(9, 10)), catalogtest.BenchPaths)
			catalogtest.BenchDeletePaths(b, c, hashes, batch)
		})
	}
}

// BenchmarkStats computes `cached stats` over a catalog of 100,000 paths.
func BenchmarkStats(b *testing.B) {
	c := openB(b)
	fillPaths(b, c, rand.New(rand.NewPCG(11, 12)), catalogtest.BenchPaths)
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
		if s.Paths != catalogtest.BenchPaths {
			b.Fatalf("Stats counted %d paths, want %d", s.Paths, catalogtest.BenchPaths)
		}
	}
}
