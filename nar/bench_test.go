package nar

import (
	"bytes"
	"fmt"
	"io"
	"sync"
	"testing"
)

// Benchmark archives: one 64 MiB file, and 10,000 small files in 100
// directories.
const (
	benchBigSize = 64 << 20
	benchDirs    = 100
	benchFiles   = 100 // per directory
)

var benchChunk = func() []byte {
	b := make([]byte, 1<<20)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}()

// writeBig writes the one-file archive in writes of chunk bytes.
func writeBig(w io.Writer, chunk int) error {
	nw := NewWriter(w)
	if err := nw.WriteHeader(&Header{Path: "/", Type: TypeRegular, Size: benchBigSize}); err != nil {
		return err
	}
	for range benchBigSize / chunk {
		if _, err := nw.Write(benchChunk[:chunk]); err != nil {
			return err
		}
	}
	return nw.Close()
}

// benchSmallHeaders are the headers of the archive of many small files
// (about 1 KiB each).
var benchSmallHeaders = sync.OnceValue(func() []Header {
	hs := []Header{{Path: "/", Type: TypeDirectory}}
	for d := range benchDirs {
		dir := fmt.Sprintf("/dir%03d", d)
		hs = append(hs, Header{Path: dir, Type: TypeDirectory})
		for f := range benchFiles {
			size := (d*benchFiles + f) * 37 % 2048
			hs = append(hs, Header{Path: fmt.Sprintf("%s/file%03d", dir, f), Type: TypeRegular, Size: int64(size), Executable: f%7 == 0})
		}
	}
	return hs
})

// writeSmall writes the archive of many small files.
func writeSmall(w io.Writer) error {
	nw := NewWriter(w)
	hs := benchSmallHeaders()
	for i := range hs {
		if err := nw.WriteHeader(&hs[i]); err != nil {
			return err
		}
		if _, err := nw.Write(benchChunk[:hs[i].Size]); err != nil {
			return err
		}
	}
	return nw.Close()
}

var benchNARs = sync.OnceValues(func() (map[string][]byte, error) {
	var big, small bytes.Buffer
	if err := writeBig(&big, 1<<20); err != nil {
		return nil, err
	}
	if err := writeSmall(&small); err != nil {
		return nil, err
	}
	return map[string][]byte{"file-64MiB": big.Bytes(), "files-10000": small.Bytes()}, nil
})

func benchNAR(b *testing.B, name string) []byte {
	nars, err := benchNARs()
	if err != nil {
		b.Fatal(err)
	}
	return nars[name]
}

// BenchmarkReader validates a NAR, skipping contents as the upload path
// does ("skip") or reading them all ("read").
func BenchmarkReader(b *testing.B) {
	for _, name := range []string{"file-64MiB", "files-10000"} {
		for _, mode := range []string{"skip", "read"} {
			b.Run(name+"/"+mode, func(b *testing.B) {
				data := benchNAR(b, name)
				buf := make([]byte, 32<<10)
				b.SetBytes(int64(len(data)))
				b.ReportAllocs()
				for b.Loop() {
					r := NewReader(bytes.NewReader(data))
					for {
						_, err := r.Next()
						if err == io.EOF {
							break
						}
						if err != nil {
							b.Fatal(err)
						}
						if mode == "read" {
							if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, buf); err != nil {
								b.Fatal(err)
							}
						}
					}
				}
			})
		}
	}
}

// BenchmarkWriter writes to io.Discard, so it measures the Writer alone;
// writes of 32 KiB or more go straight through to the destination.
func BenchmarkWriter(b *testing.B) {
	cases := []struct {
		name, nar string
		write     func(io.Writer) error
	}{
		{"file-64MiB/1MiB-writes", "file-64MiB", func(w io.Writer) error { return writeBig(w, 1<<20) }},
		{"file-64MiB/8KiB-writes", "file-64MiB", func(w io.Writer) error { return writeBig(w, 8<<10) }},
		{"files-10000", "files-10000", writeSmall},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(benchNAR(b, c.nar))))
			b.ReportAllocs()
			for b.Loop() {
				if err := c.write(io.Discard); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkListing(b *testing.B) {
	for _, name := range []string{"file-64MiB", "files-10000"} {
		b.Run(name, func(b *testing.B) {
			data := benchNAR(b, name)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if err := WriteListing(io.Discard, bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
