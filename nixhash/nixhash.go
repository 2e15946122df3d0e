// Package nixhash holds cryptographic digests as Nix writes them:
// "sha256:<nix32>", with the base-16, base-64 and SRI forms Nix also reads.
// A Hash is a small comparable value that needs no heap.
package nixhash

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/nix-cached/cached/nixbase32"
)

// ErrInvalid is returned for text or bytes that are not a valid hash.
var ErrInvalid = errors.New("nixhash: invalid hash")

// Algo is a hash algorithm Nix knows. The zero Algo is no algorithm.
type Algo uint8

// The algorithms Nix supports.
const (
	MD5 Algo = iota + 1
	SHA1
	SHA256
	SHA512
)

// maxSize is the largest digest size, that of SHA-512.
const maxSize = 64

var algoNames = [...]string{MD5: "md5", SHA1: "sha1", SHA256: "sha256", SHA512: "sha512"}

var algoSizes = [...]int{MD5: 16, SHA1: 20, SHA256: 32, SHA512: 64}

// String returns the algorithm's name as Nix writes it, such as "sha256".
func (a Algo) String() string {
	if !a.valid() {
		return fmt.Sprintf("Algo(%d)", uint8(a))
	}
	return algoNames[a]
}

// Size returns the digest length in bytes, or 0 for an unknown algorithm.
func (a Algo) Size() int {
	if !a.valid() {
		return 0
	}
	return algoSizes[a]
}

func (a Algo) valid() bool {
	return a >= MD5 && a <= SHA512
}

// ParseAlgo returns the algorithm named s ("md5", "sha1", "sha256" or
// "sha512", lower case as in Nix).
func ParseAlgo(s string) (Algo, error) {
	for a := MD5; a <= SHA512; a++ {
		if algoNames[a] == s {
			return a, nil
		}
	}
	return 0, fmt.Errorf("%w: unknown algorithm %q", ErrInvalid, clip(s))
}

// Hash is a digest together with its algorithm. Hashes compare with ==;
// the zero Hash has no algorithm.
type Hash struct {
	algo   Algo
	digest [maxSize]byte
}

// New returns the hash of algorithm a with the given digest.
func New(a Algo, digest []byte) (Hash, error) {
	if !a.valid() {
		return Hash{}, fmt.Errorf("%w: unknown algorithm %d", ErrInvalid, uint8(a))
	}
	if len(digest) != a.Size() {
		return Hash{}, fmt.Errorf("%w: %s digest of %d bytes, want %d", ErrInvalid, a, len(digest), a.Size())
	}
	h := Hash{algo: a}
	copy(h.digest[:], digest)
	return h, nil
}

// NewSHA256 returns the SHA-256 hash with digest sum.
func NewSHA256(sum [32]byte) Hash {
	h := Hash{algo: SHA256}
	copy(h.digest[:], sum[:])
	return h
}

// Algo returns the hash's algorithm, or 0 for the zero Hash.
func (h Hash) Algo() Algo { return h.algo }

// Digest returns a copy of the digest bytes.
func (h Hash) Digest() []byte {
	return append([]byte(nil), h.digest[:h.algo.Size()]...)
}

// IsZero reports whether h is the zero Hash.
func (h Hash) IsZero() bool { return h.algo == 0 }

// String returns Nix's canonical form "<algo>:<nix32>", or "" for the zero
// Hash.
func (h Hash) String() string {
	if h.IsZero() {
		return ""
	}
	var buf [len("sha512:") + 103]byte
	return string(h.AppendText(buf[:0]))
}

// AppendText appends the canonical form of h, as String returns it, to dst.
func (h Hash) AppendText(dst []byte) []byte {
	if h.IsZero() {
		return dst
	}
	dst = append(dst, algoNames[h.algo]...)
	dst = append(dst, ':')
	return nixbase32.AppendEncode(dst, h.digest[:h.algo.Size()])
}

// Nix32 returns the digest alone in nix32.
func (h Hash) Nix32() string {
	return nixbase32.EncodeToString(h.digest[:h.algo.Size()])
}

// Hex returns the digest alone in lower-case base 16.
func (h Hash) Hex() string {
	return hex.EncodeToString(h.digest[:h.algo.Size()])
}

// SRI returns the Subresource Integrity form "<algo>-<padded base64>", or ""
// for the zero Hash.
func (h Hash) SRI() string {
	if h.IsZero() {
		return ""
	}
	return algoNames[h.algo] + "-" + base64.StdEncoding.EncodeToString(h.digest[:h.algo.Size()])
}

// clip shortens s for an error message.
func clip(s string) string {
	const max = 80
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
