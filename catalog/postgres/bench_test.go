package postgres

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/nix-cached/cached/catalog/catalogtest"
	"github.com/nix-cached/cached/catalog/synth"
	"github.com/nix-cached/cached/internal/pgtest"
)

// openBench opens a catalog on a new cluster that syncs to disk like a
// production one (the test clusters do not), so that write figures
// compare with SQLite's durable commits.
func openBench(b *testing.B) *Catalog {
	b.Helper()
	srv := pgtest.Start(b, "fsync=on", "full_page_writes=on", "synchronous_commit=on")
	c, err := Open(context.Background(), srv.NewDatabase(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// fillPaths copies n NARs and published paths straight into the database,
// each path referencing up to 3 earlier ones, and returns their hash parts
// and NAR keys.
func fillPaths(b *testing.B, c *Catalog, r *rand.Rand, n int) (hashes, keys []string) {
	b.Helper()
	ctx := context.Background()
	var nars, paths, refs [][]any
	err := synth.Generate(synth.Options{Paths: n, Rand: r}, func(row synth.Row) error {
		id, ms := int64(len(nars)+1), row.At.UnixMilli()
		hashes, keys = append(hashes, row.Hash), append(keys, row.Key)
		nars = append(nars, []any{id, row.Key, "zstd", row.FileHash, int64(12345), row.FileHash, int64(45678), ms})
		paths = append(paths, []any{row.Hash, "/nix/store/" + row.Hash + "-synthetic", id, row.FileHash,
			int64(45678), row.NarInfo, ms, ms})
		for _, ref := range row.Refs {
			refs = append(refs, []any{row.Hash, ref})
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	for _, cp := range []struct {
		table string
		cols  []string
		rows  [][]any
	}{
		{"nars", []string{"id", "key", "compression", "file_hash", "file_size", "nar_hash", "nar_size", "created_at"}, nars},
		{"paths", []string{"hash_part", "store_path", "nar_id", "nar_hash", "nar_size", "narinfo", "created_at", "last_used"}, paths},
		{"refs", []string{"referrer", "reference"}, refs},
	} {
		if _, err := c.pool.CopyFrom(ctx, pgx.Identifier{cp.table}, cp.cols, pgx.CopyFromRows(cp.rows)); err != nil {
			b.Fatalf("filling %s: %v", cp.table, err)
		}
	}
	if _, err := c.pool.Exec(ctx, `SELECT setval(pg_get_serial_sequence('nars', 'id'), max(id)) FROM nars`); err != nil {
		b.Fatal(err)
	}
	if _, err := c.pool.Exec(ctx, `VACUUM ANALYZE`); err != nil {
		b.Fatal(err)
	}
	return hashes, keys
}

// BenchmarkNarInfo looks narinfos up in a catalog of 100,000 paths.
func BenchmarkNarInfo(b *testing.B) {
	c := openBench(b)
	r := rand.New(rand.NewPCG(1, 2))
	hits, _ := fillPaths(b, c, r, catalogtest.BenchPaths)
	catalogtest.BenchNarInfoLookups(b, c, r, hits)
}

// BenchmarkPublish publishes paths with three references each; every
// Publish is one durable commit.
func BenchmarkPublish(b *testing.B) {
	c := openBench(b)
	r := rand.New(rand.NewPCG(3, 4))
	base, _ := fillPaths(b, c, r, 1000)
	catalogtest.BenchPublish(b, c, r, base)
}

// BenchmarkWalkGraph walks a catalog of 100,000 paths with up to 3
// references each, as a collection's mark phase does.
func BenchmarkWalkGraph(b *testing.B) {
	c := openBench(b)
	fillPaths(b, c, rand.New(rand.NewPCG(5, 6)), catalogtest.BenchPaths)
	catalogtest.BenchWalkGraph(b, c, catalogtest.BenchPaths)
}

// BenchmarkDeletePaths deletes paths from a catalog of 100,000, each with
// its NAR: one at a time with DeletePath, and in batches of 256 (the
// sweep) with DeletePaths.
func BenchmarkDeletePaths(b *testing.B) {
	for _, batch := range []int{1, 256} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			c := openBench(b)
			hashes, _ := fillPaths(b, c, rand.New(rand.NewPCG(9, 10)), catalogtest.BenchPaths)
			catalogtest.BenchDeletePaths(b, c, hashes, batch)
		})
	}
}

// BenchmarkRecordUse records batches of 10,000 uses (the server's flush)
// in a catalog of 100,000 paths, by hash part and by NAR key.
func BenchmarkRecordUse(b *testing.B) {
	c := openBench(b)
	r := rand.New(rand.NewPCG(7, 8))
	hashes, keys := fillPaths(b, c, r, catalogtest.BenchPaths)
	catalogtest.BenchRecordUse(b, c, r, hashes, keys)
}
