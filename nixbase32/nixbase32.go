// Package nixbase32 implements Nix's base-32 encoding ("nix32"), used for
// store path hash parts and for hashes in narinfo files. It is not RFC 4648
// base32: the alphabet omits e, o, u and t, and the input is read as one
// little-endian bit string whose last bytes decide the first characters.
package nixbase32

import (
	"errors"
	"fmt"
	"io"
)

// Alphabet is the nix32 alphabet, in digit order.
const Alphabet = "0123456789abcdfghijklmnpqrsvwxyz"

// ErrInvalid is returned for text that is not a valid nix32 encoding.
var ErrInvalid = errors.New("nixbase32: invalid encoding")

// invalid marks bytes outside the alphabet in decodeMap.
const invalid = 0xff

// decodeMap maps an input byte to its digit value, or invalid.
var decodeMap = func() (m [256]byte) {
	for i := range m {
		m[i] = invalid
	}
	for i := 0; i < len(Alphabet); i++ {
		m[Alphabet[i]] = byte(i)
	}
	return m
}()

// EncodedLen returns the length of the encoding of n bytes.
func EncodedLen(n int) int {
	return (n*8 + 4) / 5
}

// DecodedLen returns the number of bytes that n encoded characters hold.
func DecodedLen(n int) int {
	return n * 5 / 8
}

// Encode writes the encoding of src to dst, which must hold
// EncodedLen(len(src)) bytes.
func Encode(dst, src []byte) {
	n := EncodedLen(len(src))
	dst = dst[:n]
	// Character k from the end holds bits 5k..5k+4 of src read as a
	// little-endian number, so 8 characters hold 5 bytes.
	for g := 0; 8*g < n; g++ {
		var acc uint64
		for b := 0; b < 5 && 5*g+b < len(src); b++ {
			acc |= uint64(src[5*g+b]) << (8 * b)
		}
		for t := 0; t < 8 && 8*g+t < n; t++ {
			dst[n-1-8*g-t] = Alphabet[(acc>>(5*t))&0x1f]
		}
	}
}

// AppendEncode appends the encoding of src to dst and returns the result.
func AppendEncode(dst, src []byte) []byte {
	n := EncodedLen(len(src))
	dst = grow(dst, n)
	Encode(dst[len(dst)-n:], src)
	return dst
}

// EncodeToString returns the encoding of src.
func EncodeToString(src []byte) string {
	buf := make([]byte, EncodedLen(len(src)))
	Encode(buf, src)
	return string(buf)
}

// Decode decodes src into dst, which must hold DecodedLen(len(src)) bytes,
// and returns the number of bytes written. It rejects characters outside
// the alphabet, lengths that no byte count encodes to, and non-zero bits
// beyond the decoded length.
func Decode(dst, src []byte) (int, error) {
	out, err := prepare(dst, len(src))
	if err != nil {
		return 0, err
	}
	var bad byte
	for g := 0; 8*g < len(src); g++ {
		var acc uint64
		for t := 0; t < 8 && 8*g+t < len(src); t++ {
			d := decodeMap[src[len(src)-1-8*g-t]]
			bad |= d
			acc |= uint64(d&0x1f) << (5 * t)
		}
		if !flush(out, g, acc) && bad&0x80 == 0 {
			return 0, errOverflow()
		}
	}
	if bad&0x80 != 0 {
		clear(out)
		return 0, errFirstBad(string(src)) // error path only
	}
	return len(out), nil
}

// DecodeStringTo is Decode for a string source: it decodes s into dst
// without allocating. It repeats Decode's body on purpose: a generic
// version of the two makes the caller's dst escape to the heap, which
// costs nixhash.Parse an allocation on the narinfo hot path.
func DecodeStringTo(dst []byte, s string) (int, error) {
	out, err := prepare(dst, len(s))
	if err != nil {
		return 0, err
	}
	var bad byte
	for g := 0; 8*g < len(s); g++ {
		var acc uint64
		for t := 0; t < 8 && 8*g+t < len(s); t++ {
			d := decodeMap[s[len(s)-1-8*g-t]]
			bad |= d
			acc |= uint64(d&0x1f) << (5 * t)
		}
		if !flush(out, g, acc) && bad&0x80 == 0 {
			return 0, errOverflow()
		}
	}
	if bad&0x80 != 0 {
		clear(out)
		return 0, errFirstBad(s) // error path only
	}
	return len(out), nil
}

// DecodeString returns the bytes that s encodes.
func DecodeString(s string) ([]byte, error) {
	n, err := checkLen(len(s))
	if err != nil {
		return nil, err
	}
	buf := make([]byte, n)
	if _, err := DecodeStringTo(buf, s); err != nil {
		return nil, err
	}
	return buf, nil
}

// ValidateString reports whether s is a valid encoding, with the same
// checks as Decode, without allocating.
func ValidateString(s string) error {
	n, err := checkLen(len(s))
	if err != nil {
		return err
	}
	if err := errFirstBad(s); err != nil {
		return err
	}
	if len(s) > 0 && overflows(decodeMap[s[0]], len(s), n) {
		return errOverflow()
	}
	return nil
}

// prepare checks an encoded length against dst and returns the zeroed
// part of dst that the decoding fills.
func prepare(dst []byte, encLen int) ([]byte, error) {
	n, err := checkLen(encLen)
	if err != nil {
		return nil, err
	}
	if len(dst) < n {
		return nil, fmt.Errorf("nixbase32: destination holds %d bytes, need %d: %w", len(dst), n, io.ErrShortBuffer)
	}
	out := dst[:n]
	clear(out)
	return out, nil
}

// flush stores the 5 bytes of group g, which acc holds, in out; it reports
// false (after clearing out) when acc has bits beyond the end of out.
func flush(out []byte, g int, acc uint64) bool {
	for b := 0; b < 5; b++ {
		if 5*g+b < len(out) {
			out[5*g+b] = byte(acc >> (8 * b))
		} else if acc>>(8*b) != 0 {
			clear(out)
			return false
		}
	}
	return true
}

// errFirstBad returns the error for the first character of s outside the
// alphabet.
func errFirstBad(s string) error {
	for i := 0; i < len(s); i++ {
		if decodeMap[s[i]] == invalid {
			return errChar(s[i], i)
		}
	}
	return nil
}

// checkLen returns the decoded length for an encoded length, or an error
// when no byte count encodes to that many characters.
func checkLen(encLen int) (int, error) {
	n := DecodedLen(encLen)
	if EncodedLen(n) != encLen {
		return 0, errLen(encLen)
	}
	return n, nil
}

// overflows reports whether the first character d of an encoding of
// encLen characters holding n bytes sets bits beyond 8n.
func overflows(d byte, encLen, n int) bool {
	used := 8*n - 5*(encLen-1) // bits of the first character that hold data
	return d>>used != 0
}

func errChar(c byte, pos int) error {
	return fmt.Errorf("%w: character %q at offset %d is not in the alphabet", ErrInvalid, c, pos)
}

func errLen(n int) error {
	return fmt.Errorf("%w: no byte string encodes to %d characters", ErrInvalid, n)
}

func errOverflow() error {
	return fmt.Errorf("%w: non-zero bits beyond the decoded length", ErrInvalid)
}

func grow(dst []byte, n int) []byte {
	if cap(dst)-len(dst) < n {
		nd := make([]byte, len(dst), len(dst)+n)
		copy(nd, dst)
		dst = nd
	}
	return dst[:len(dst)+n]
}
