package sqlite

import (
	"context"
	"database/sql"
	"math/rand/v2"
	"os"
	"testing"
)

// BenchmarkNarInfoLarge looks narinfos up in the million-path catalog
// that the server's BenchmarkNarInfoHit fills and keeps at
// $CACHED_BENCH_LARGE (skipped when it is unset or not filled yet): a
// 1.9 GiB file, far beyond the page cache of a connection.
func BenchmarkNarInfoLarge(b *testing.B) {
	db := os.Getenv("CACHED_BENCH_LARGE")
	if db == "" {
		b.Skip("CACHED_BENCH_LARGE names no database file")
	}
	if _, err := os.Stat(db); err != nil {
		b.Skipf("%v (go test -bench NarInfoHit ./server fills it)", err)
	}
	ctx := context.Background()
	c, err := Open(ctx, db)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var hashes []string
	if err := c.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT hash_part FROM paths`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var h string
			if err := rows.Scan(&h); err != nil {
				return err
			}
			hashes = append(hashes, h)
		}
		return rows.Err()
	}); err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	hits := make([]string, 100_000)
	for i := range hits {
		hits[i] = hashes[r.IntN(len(hashes))]
	}
	b.Run("hit", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := c.NarInfo(ctx, hits[i%len(hits)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
