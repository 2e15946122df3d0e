package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog"
)

const benchAlphabet = "0123456789abcdfghijklmnpqrsvwxyz"

// benchHash returns a random nix32-alphabet string of n characters.
func benchHash(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = benchAlphabet[r.IntN(len(benchAlphabet))]
	}
	return string(b)
}

// benchNarInfo renders a narinfo of typical size for path h.
func benchNarInfo(h, narKey string, refs []string) string {
	return fmt.Sprintf("StorePath: /nix/store/%s-bench\nURL: %s\nCompression: zstd\n"+
		"FileHash: sha256:%s\nFileSize: 12345\nNarHash: sha256:%s\nNarSize: 45678\n"+
		"References: %s\nDeriver: %s-bench.drv\n"+
		"Sig: cache.example.org-1:%s==\n",
		h, narKey, strings.Repeat("1", 52), strings.Repeat("0", 52),
		strings.Join(refs, " "), h, strings.Repeat("A", 86))
}

// fillPaths inserts n NARs and published paths straight into the database
// in one transaction, each path referencing up to 3 earlier ones, then
// checkpoints the WAL, and returns their hash parts.
func fillPaths(b *testing.B, c *Catalog, r *rand.Rand, n int) []string {
	b.Helper()
	ctx := context.Background()
	hashes := make([]string, n)
	err := c.write(ctx, func(tx *sql.Tx) error {
		for i := range hashes {
			h := benchHash(r, 32)
			hashes[i] = h
			key := "nar/" + benchHash(r, 52) + ".nar.zst"
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
				benchNarInfo(h, key, refs)); err != nil {
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
	return hashes
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
	hits := fillPaths(b, c, r, 100_000)
	misses := make([]string, 4096)
	for i := range misses {
		misses[i] = benchHash(r, 32)
	}
	r.Shuffle(len(hits), func(i, j int) { hits[i], hits[j] = hits[j], hits[i] })
	ctx := context.Background()
	// Read everything once so that every sub-benchmark starts warm.
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

// BenchmarkPublish publishes paths with three references each, the NARs
// recorded beforehand; every Publish is one durable (fsynced) commit.
func BenchmarkPublish(b *testing.B) {
	c := openB(b)
	r := rand.New(rand.NewPCG(3, 4))
	base := fillPaths(b, c, r, 1000)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		b.StopTimer()
		h := benchHash(r, 32)
		n := catalog.NAR{
			Key: "nar/" + benchHash(r, 52) + ".nar.zst", Compression: "zstd",
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
			NarInfo: benchNarInfo(h, n.Key, refs),
		}
		b.StartTimer()
		if err := c.Publish(ctx, p, catalog.PublishOptions{}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
