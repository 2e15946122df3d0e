package s3

import (
	"io"
	"testing"

	"github.com/nix-cached/cached/internal/s3test"
	"github.com/nix-cached/cached/storage"
)

// pattern is an endless reader repeating 1 MiB of pseudo-random bytes:
// cheap to produce, and incompressible enough for a blob store.
type pattern struct {
	buf []byte
	off int
}

func (p *pattern) Read(b []byte) (int, error) {
	n := copy(b, p.buf[p.off:])
	p.off = (p.off + n) % len(p.buf)
	return n, nil
}

// BenchmarkPutGet streams a 256 MiB object into MinIO through the
// multipart path and reads it back, with the default part size and memory
// bound. MB/s is the object's size over the time of one Put or Get.
func BenchmarkPutGet(b *testing.B) {
	const size = 256 << 20
	srv := s3test.Start(b)
	srv.Setenv(b)
	s, err := New(b.Context(), Config{Bucket: srv.NewBucket(b), Prefix: "bench", Endpoint: srv.Endpoint, PathStyle: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	src := &pattern{buf: payload(42, 1<<20)}
	b.Run("Put", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := storage.Put(b.Context(), s, "nar/bench.nar", io.LimitReader(src, size)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Get", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			r, err := s.Open(b.Context(), "nar/bench.nar")
			if err != nil {
				b.Fatal(err)
			}
			n, err := io.Copy(io.Discard, r)
			r.Close()
			if err != nil || n != size {
				b.Fatalf("read %d bytes, %v", n, err)
			}
		}
	})
}
