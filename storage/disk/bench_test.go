package disk

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"testing"

	"github.com/nix-cached/cached/storage"
)

func BenchmarkPut(b *testing.B) {
	s, err := New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	data := bytes.Repeat([]byte("nix-archive-1 "), 1<<20/14)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := storage.Put(b.Context(), s, "nar/bench.nar", bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenRead(b *testing.B) {
	s, err := New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	data := bytes.Repeat([]byte("nix-archive-1 "), 1<<20/14)
	if _, err := storage.Put(b.Context(), s, "nar/bench.nar", bytes.NewReader(data)); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := s.Open(b.Context(), "nar/bench.nar")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			b.Fatal(err)
		}
		r.Close()
	}
}

func BenchmarkStat(b *testing.B) {
	s, err := New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if _, err := storage.Put(b.Context(), s, "5sbpggnbip0823i5hiz50vgjqgq7kd7c.narinfo", bytes.NewReader([]byte("x"))); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Stat(b.Context(), "5sbpggnbip0823i5hiz50vgjqgq7kd7c.narinfo"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPutLarge stores a 4 MiB object as ingest does a large path's
// NAR, hashing each piece twice (the upload and the NAR) as it writes it,
// with and without write-behind: what write-behind saves is the part of
// Commit's fsync that overlaps that work.
func BenchmarkPutLarge(b *testing.B) {
	data := make([]byte, 4<<20)
	for i := range data {
		data[i] = byte(i * 7919 >> 3)
	}
	for _, wb := range []int64{0, writeBehind} {
		b.Run(fmt.Sprintf("writebehind=%d", wb), func(b *testing.B) {
			defer func(old int64) { writeBehind = old }(writeBehind)
			writeBehind = wb
			s, err := New(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			b.SetBytes(int64(len(data)))
			i := 0
			for b.Loop() {
				i++
				u, err := s.Create(b.Context())
				if err != nil {
					b.Fatal(err)
				}
				for off := 0; off < len(data); off += 256 << 10 {
					piece := data[off : off+256<<10]
					sha256.Sum256(piece)
					sha256.Sum256(piece)
					if _, err := u.Write(piece); err != nil {
						b.Fatal(err)
					}
				}
				if err := u.Commit(b.Context(), fmt.Sprintf("nar/bench-%d.nar", i)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
