package sqlite

import (
	"context"
	"database/sql"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/nix-cached/cached/catalog/catalogtest"
)

// fillPaths inserts n NARs and published paths straight into the database
// in one transaction, each path referencing up to 3 earlier ones, then
// checkpoints the WAL, and returns their hash parts and NAR keys.
func fillPaths(b *testing.B, c *Catalog, r *rand.Rand, n int) (hashes, keys []string) {
	b.Helper()
	ctx := context.Background()
	hashes, keys = make([]string, n), make([]string, n)
	err := c.write(ctx, func(tx *sql.Tx) error {
		for i := range hashes {
			h := catalogtest.BenchHash(r, 32)
			hashes[i] = h
			key := "nar/" + catalogtest.BenchHash(r, 52) + ".nar.zst"
			keys[i] = key
			var id int64
			if err := tx.QueryRowContext(ctx, `INSERT INTO nars (key, compression, file_hash,
				file_size, nar_hash, nar_size, created_at) VALUES (?, 'zstd', ?, 1, ?, 2, 0) RETURNING id`,
				key, "sha256:"+key[4:56], "sha256:"+key[4:56]).Scan(&id); err != nil {
				return err
			}
			var refs []string
			for j := 0; j < 3 && i > 0; j++ {
				refs = append(refs, hashes[r.IntN(i)])
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO paths (hash_part, store_path, nar_id,
				nar_hash, nar_size, narinfo, created_at) VALUES (?, ?, ?, ?, 2, ?, 0)`,
				h, "/nix/store/"+h+"-bench", id, "sha256:"+key[4:56],
				catalogtest.BenchNarInfo(h, key, refs)); err != nil {
				return err
			}
			for _, ref := range refs {
				if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO refs (referrer, reference)
					VALUES (?, ?)`, h, ref); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		b.Fatalf("filling the catalog: %v", err)
	}
	// One huge transaction leaves every page in the WAL; a running server
	// commits small ones, so most pages live in the database file.
	if _, err := c.writer.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		b.Fatalf("checkpoint: %v", err)
	}
	return hashes, keys
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
