package nixhash

import (
	"crypto/sha256"
	"hash"
)

// SHA256Writer hashes what is written to it with SHA-256 and counts the
// bytes: a NAR's NarHash and NarSize, or a file's FileHash and FileSize,
// in the same pass that copies it.
type SHA256Writer struct {
	h hash.Hash
	n int64
}

// NewSHA256Writer returns an empty SHA256Writer.
func NewSHA256Writer() *SHA256Writer { return &SHA256Writer{h: sha256.New()} }

// Write adds p; it never fails.
func (w *SHA256Writer) Write(p []byte) (int, error) {
	w.h.Write(p)
	w.n += int64(len(p))
	return len(p), nil
}

// Size is how many bytes were written.
func (w *SHA256Writer) Size() int64 { return w.n }

// Sum is the SHA-256 of what was written.
func (w *SHA256Writer) Sum() Hash {
	var s [32]byte
	w.h.Sum(s[:0])
	return NewSHA256(s)
}
