package gc

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/nix-cached/cached/ingest"
)

// BenchmarkVerify checks 500 published paths without reading their NARs.
func BenchmarkVerify(b *testing.B) {
	f := newFixture(b, ingest.ModeZstd)
	prev := ""
	const paths = 500
	for i := range paths {
		base := storePath(fmt.Sprintf("p%d", i))
		if prev == "" {
			f.push(base, ingest.CompXZ, []byte(base))
		} else {
			f.push(base, ingest.CompXZ, []byte(base), prev)
		}
		prev = base
	}
	b.ReportAllocs()
	for b.Loop() {
		rep, err := Verify(context.Background(), f.cat, f.store, VerifyOptions{})
		if err != nil || len(rep.Problems) != 0 || rep.Paths != paths {
			b.Fatalf("%+v %v", rep, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*paths), "ns/path")
}

// BenchmarkVerifyContents re-reads stored zstd NARs: 8 MiB of random bytes
// and 8 MiB of text. Throughput is of the stored files.
func BenchmarkVerifyContents(b *testing.B) {
	f := newFixture(b, ingest.ModeZstd)
	random := make([]byte, 8<<20)
	rng := rand.NewChaCha8([32]byte{1})
	rng.Read(random)
	var text bytes.Buffer
	for i := 0; text.Len() < 8<<20; i++ {
		fmt.Fprintf(&text, "line %d of a compressible file\n", i)
	}
	f.push(storePath("random"), ingest.CompNone, random)
	f.push(storePath("text"), ingest.CompNone, text.Bytes())
	rep, err := Verify(context.Background(), f.cat, f.store, VerifyOptions{Contents: true})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(rep.Bytes)
	b.ReportAllocs()
	for b.Loop() {
		rep, err := Verify(context.Background(), f.cat, f.store, VerifyOptions{Contents: true})
		if err != nil || len(rep.Problems) != 0 {
			b.Fatalf("%+v %v", rep, err)
		}
	}
}
