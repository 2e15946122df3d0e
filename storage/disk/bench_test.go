package disk

import (
	"bytes"
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
