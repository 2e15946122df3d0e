package s3

import (
	"errors"
	"io"
	"sync"
)

// Upload buffers are lists of chunks, so that a part never needs one large
// contiguous allocation and a small object only a small one. The first
// chunks of an upload grow from minChunk to maxChunk.
const (
	minChunk = 16 << 10
	maxChunk = 256 << 10
)

// newChunk returns an empty chunk of capacity size, reusing one that an
// earlier upload released if size is maxChunk.
func (s *Store) newChunk(size int64) []byte {
	if size == maxChunk {
		if c, ok := s.chunks.Get().(*[]byte); ok {
			return (*c)[:0]
		}
	}
	return make([]byte, 0, size)
}

// recycleChunk keeps a chunk of an ended upload for a later one.
func (s *Store) recycleChunk(c []byte) {
	if cap(c) == maxChunk {
		c = c[:0]
		s.chunks.Put(&c)
	}
}

// partsPerStep is how many parts keep one size before the size doubles.
const partsPerStep = 1000

// partSize returns the size of part n (counting from 1) of a multipart
// upload whose first part is first bytes: the size doubles every 1,000
// parts, up to S3's 5 GiB, so that 10,000 parts of a first part of 5 MiB
// hold over 5 TiB. With uniform, every part is first bytes.
func partSize(first int64, n int, uniform bool) int64 {
	size := first
	if !uniform {
		for step := (n - 1) / partsPerStep; step > 0 && size < maxPartSize; step-- {
			size *= 2
		}
	}
	return min(size, maxPartSize)
}

// errDetached is returned by a body read after its upload call returned.
var errDetached = errors.New("s3: request body read after its request ended")

// body is an io.ReadSeeker over chunks, the payload of one PutObject or
// UploadPart call. Once the call returns, detach stops every read, so the
// chunks can be reused even while the HTTP transport, which may close a
// request body after the call returns, still holds the body.
type body struct {
	mu       sync.Mutex
	chunks   [][]byte
	size     int64
	off      int64 // read offset
	ci, co   int   // chunk index and offset in it of off
	detached bool
}

// newBody returns a body over chunks holding size bytes in all.
func newBody(chunks [][]byte, size int64) *body {
	return &body{chunks: chunks, size: size}
}

// Read implements io.Reader.
func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.detached {
		return 0, errDetached
	}
	n := 0
	for n < len(p) && b.off < b.size {
		c := b.chunks[b.ci][b.co:]
		k := copy(p[n:], c)
		n += k
		b.advance(k, len(c))
	}
	if n == 0 && len(p) > 0 {
		return 0, io.EOF
	}
	return n, nil
}

// WriteTo implements io.WriterTo, so that hashing and sending the body need
// no copy buffer. It writes at most 64 KiB per call to w, holding the lock,
// so that detach waits for at most one such write.
func (b *body) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		b.mu.Lock()
		if b.detached {
			b.mu.Unlock()
			return total, errDetached
		}
		if b.off >= b.size {
			b.mu.Unlock()
			return total, nil
		}
		c := b.chunks[b.ci][b.co:]
		c = c[:min(len(c), 64<<10)]
		k, err := w.Write(c)
		b.advance(k, len(b.chunks[b.ci])-b.co)
		b.mu.Unlock()
		total += int64(k)
		if err != nil {
			return total, err
		}
		if k < len(c) {
			return total, io.ErrShortWrite
		}
	}
}

// advance moves the read offset k bytes on in a chunk that had rest bytes
// left. b.mu must be held.
func (b *body) advance(k, rest int) {
	b.off += int64(k)
	b.co += k
	if k == rest {
		b.ci++
		b.co = 0
	}
}

// Seek implements io.Seeker.
func (b *body) Seek(offset int64, whence int) (int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch whence {
	case io.SeekCurrent:
		offset += b.off
	case io.SeekEnd:
		offset += b.size
	}
	if offset < 0 || offset > b.size {
		return b.off, errors.New("s3: request body seek out of range")
	}
	b.off, b.ci, b.co = offset, 0, 0
	for rest := offset; rest > 0; b.ci++ {
		if l := int64(len(b.chunks[b.ci])); rest < l {
			b.co = int(rest)
			break
		}
		rest -= int64(len(b.chunks[b.ci]))
	}
	return offset, nil
}

// detach makes every later read fail, and waits for a read in progress.
func (b *body) detach() {
	b.mu.Lock()
	b.detached = true
	b.mu.Unlock()
}
