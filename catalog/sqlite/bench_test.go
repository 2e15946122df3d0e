package sqlite

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/catalog/catalogtest"
	"github.com/nix-cached/cached/catalog/synth"
)

// fillPaths adds n synthetic published paths, each referencing up to 3
// earlier ones, and returns their hash parts and NAR keys.
func fillPaths(b *testing.B, c *Catalog, r *rand.Rand, n int) (hashes, keys []string) {
	b.Helper()
	res, err := synth.FillSQLite(context.Background(), c.path, synth.Options{Paths: n, Rand: r})
	if err != nil {
		b.Fatal(err)
	}
	return res.Hashes, res.Keys
}

// openB opens a new catalog for a benchmark.
func openB(b *testing.B) *Catalog {
	b.Helper()
	c, err := Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// BenchmarkNarInfo looks narinfos up in a catalog of 100,000 paths.
func BenchmarkNarInfo(b *testing.B) {
	c := openB(b)
	r := rand.New(rand.NewPCG(1, 2))
	hits, _ := fillPaths(b, c, r, catalogtest.BenchPaths)
	catalogtest.BenchNarInfoLookups(b, c, r, hits)
}

// BenchmarkPublish publishes paths with three references each; every
// Publish is one durable (fsynced) commit.
func BenchmarkPublish(b *testing.B) {
	c := openB(b)
	r := rand.New(rand.NewPCG(3, 4))
	base, _ := fillPaths(b, c, r, 1000)
	catalogtest.BenchPublish(b, c, r, base)
}

// BenchmarkPublishParallel publishes from 16 goroutines at once, as
// parallel pushes do: their durable commits are grouped.
func BenchmarkPublishParallel(b *testing.B) {
	c := openB(b)
	ctx := context.Background()
	var next atomic.Int64
	b.SetParallelism(8) // 16 publishers on 2 cores
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(next.Add(1))
			n := testNAR(i, time.Now())
			if err := c.PutNAR(ctx, n); err != nil {
				b.Error(err)
				return
			}
			if err := c.Publish(ctx, testPath(i, n), catalog.PublishOptions{}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
