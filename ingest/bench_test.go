package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/nix-cached/cached/catalog/sqlite"
	"github.com/nix-cached/cached/nar"
	"github.com/nix-cached/cached/narinfo"
	"github.com/nix-cached/cached/nixbase32"
	"github.com/nix-cached/cached/nixhash"
	"github.com/nix-cached/cached/signing"
	"github.com/nix-cached/cached/storage/disk"
)

// newDiskIngester returns an Ingester with default options over a disk
// store and a SQLite catalog in b.TempDir(), as in production.
func newDiskIngester(b *testing.B) *Ingester {
	b.Helper()
	dir := b.TempDir()
	store, err := disk.New(filepath.Join(dir, "blobs"))
	if err != nil {
		b.Fatal(err)
	}
	cat, err := sqlite.Open(context.Background(), filepath.Join(dir, "catalog.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cat.Close()
		store.Close()
	})
	key, err := signing.GenerateKey("ingest-bench-1", nil)
	if err != nil {
		b.Fatal(err)
	}
	ing, err := New(store, cat, Options{Keys: []signing.SecretKey{key}})
	if err != nil {
		b.Fatal(err)
	}
	return ing
}

// benchText returns n bytes of prose-like text: compressible, but not
// trivially so.
func benchText(r *rand.Rand, n int) string {
	words := strings.Fields("the store path of a derivation output is computed from its inputs " +
		"nix binary cache narinfo reference closure signature compression zstd xz " +
		"0 1 2 3 4 5 6 7 8 9 /nix/store lib bin share include pkgconfig cmake")
	var sb strings.Builder
	sb.Grow(n + 16)
	for sb.Len() < n {
		sb.WriteString(words[r.IntN(len(words))])
		if r.IntN(12) == 0 {
			sb.WriteByte('\n')
		} else {
			sb.WriteByte(' ')
		}
	}
	return sb.String()[:n]
}

// benchInputs caches the ingest benchmark NAR and its compressed uploads
// across runs: they are slow to make (xz).
var benchInputs struct {
	sync.Mutex
	plain []byte
	files map[string][]byte
}

// benchInput returns the ~32 MiB benchmark NAR, 12 MiB of random bytes (an
// executable), 4 MiB of mostly zeros and 16 MiB of text, and its upload
// compressed as comp.
func benchInput(b *testing.B, comp string) (plain, file []byte) {
	b.Helper()
	benchInputs.Lock()
	defer benchInputs.Unlock()
	if benchInputs.plain == nil {
		src := rand.NewChaCha8([32]byte{7})
		r := rand.New(src)
		random := make([]byte, 12<<20)
		src.Read(random)
		sparse := make([]byte, 4<<20)
		for i := 0; i < len(sparse); i += 64 + r.IntN(4096) {
			sparse[i] = byte(r.Uint32())
		}
		entries := []entry{
			{path: "/", typ: nar.TypeDirectory},
			{path: "/bin", typ: nar.TypeDirectory},
			{path: "/bin/tool", typ: nar.TypeRegular, contents: string(random), exec: true},
			{path: "/lib", typ: nar.TypeDirectory},
			{path: "/lib/data.bin", typ: nar.TypeRegular, contents: string(sparse)},
			{path: "/share", typ: nar.TypeDirectory},
			{path: "/share/doc", typ: nar.TypeDirectory},
		}
		for i := range 8 {
			entries = append(entries, entry{path: fmt.Sprintf("/share/doc/part-%d.txt", i),
				typ: nar.TypeRegular, contents: benchText(r, 2<<20)})
		}
		benchInputs.plain = makeNAR(b, entries...)
		benchInputs.files = map[string][]byte{}
	}
	if _, ok := benchInputs.files[comp]; !ok {
		benchInputs.files[comp] = compress(b, comp, benchInputs.plain)
	}
	return benchInputs.plain, benchInputs.files[comp]
}

func BenchmarkIngestNAR(b *testing.B) {
	for _, comp := range []string{CompNone, CompZstd, CompXZ} {
		b.Run(comp, func(b *testing.B) {
			plain, file := benchInput(b, comp)
			name := nameFor(comp, file)
			ing := newDiskIngester(b)
			ctx := context.Background()
			b.SetBytes(int64(len(plain)))
			b.ReportAllocs()
			var n int64
			for b.Loop() {
				got, err := ing.NAR(ctx, name, bytes.NewReader(file), int64(len(file)))
				if err != nil {
					b.Fatal(err)
				}
				n = got.NarSize
			}
			if n != int64(len(plain)) {
				b.Fatalf("NarSize %d, want %d", n, len(plain))
			}
			b.ReportMetric(float64(len(file)), "upload-B")
		})
	}
}

func BenchmarkPublishNarInfo(b *testing.B) {
	ing := newDiskIngester(b)
	ctx := context.Background()
	plain := sampleNAR(b, "publish bench")
	sum := sha256.Sum256(plain)
	name := nameFor(CompNone, plain)
	if _, err := ing.NAR(ctx, name, bytes.NewReader(plain), int64(len(plain))); err != nil {
		b.Fatal(err)
	}
	clientKey, err := signing.GenerateKey("client-1", nil)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewChaCha8([32]byte{9}))
	// body returns a signed narinfo for a fresh path naming the NAR.
	body := func(refs ...string) (string, string, []byte) {
		var raw [20]byte
		for i := range raw {
			raw[i] = byte(rng.Uint32())
		}
		hash := nixbase32.EncodeToString(raw[:])
		base := hash + "-publish-bench"
		ni := narinfo.NarInfo{
			StorePath: "/nix/store/" + base, URL: "nar/" + name, Compression: CompNone,
			FileHash: nixhash.NewSHA256(sum), FileSize: uint64(len(plain)),
			NarHash: nixhash.NewSHA256(sum), NarSize: uint64(len(plain)),
			References: refs, Deriver: hash + "-publish-bench.drv",
		}
		fp, err := ni.AppendFingerprint(nil)
		if err != nil {
			b.Fatal(err)
		}
		ni.Sigs = []string{clientKey.Sign(fp)}
		return hash, base, []byte(ni.String())
	}
	refHash, refBase, refBody := body()
	if _, err := ing.NarInfo(ctx, refHash, refBody); err != nil {
		b.Fatal(err)
	}
	hashes := make([]string, b.N)
	bodies := make([][]byte, b.N)
	for i := range bodies {
		hashes[i], _, bodies[i] = body(refBase)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		p, err := ing.NarInfo(ctx, hashes[i], bodies[i])
		if err != nil {
			b.Fatal(err)
		}
		if len(p.References) != 1 || p.References[0] != refHash {
			b.Fatalf("references %q, want [%s]", p.References, refHash)
		}
	}
}
