package nixhash

import (
	"fmt"
	"strings"

	"github.com/nix-cached/cached/nixbase32"
)

// Parse reads a hash that names its algorithm: "<algo>:<digest>" with the
// digest in nix32, base 16 (either case) or padded base 64, told apart by
// length as Nix does, or SRI "<algo>-<base64>". It does not allocate on
// success.
func Parse(s string) (Hash, error) {
	sep, sri := strings.IndexByte(s, ':'), false
	if sep < 0 {
		sep, sri = strings.IndexByte(s, '-'), true
	}
	if sep < 0 {
		return Hash{}, fmt.Errorf("%w: %q does not name its algorithm", ErrInvalid, clip(s))
	}
	a, err := ParseAlgo(s[:sep])
	if err != nil {
		return Hash{}, fmt.Errorf("%w in %q", err, clip(s))
	}
	rest := s[sep+1:]
	h := Hash{algo: a}
	dst := h.digest[:a.Size()]
	var ok bool
	switch {
	case sri:
		ok = decodeBase64(dst, rest)
	case len(rest) == 2*a.Size():
		ok = decodeHex(dst, rest)
	case len(rest) == nixbase32.EncodedLen(a.Size()):
		_, err := nixbase32.DecodeStringTo(dst, rest)
		ok = err == nil
	case len(rest) == (a.Size()+2)/3*4:
		ok = decodeBase64(dst, rest)
	default:
		return Hash{}, fmt.Errorf("%w: %q has the wrong length for %s", ErrInvalid, clip(s), a)
	}
	if !ok {
		return Hash{}, fmt.Errorf("%w: bad digest in %q", ErrInvalid, clip(s))
	}
	return h, nil
}

// decodeHex decodes base 16 text of exactly 2*len(dst) characters, in
// either case, into dst.
func decodeHex(dst []byte, s string) bool {
	for i := range dst {
		hi, lo := unhex(s[2*i]), unhex(s[2*i+1])
		if hi > 0xf || lo > 0xf {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10
	}
	return 0xff
}

const b64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

var b64Map = func() (m [256]byte) {
	for i := range m {
		m[i] = 0xff
	}
	for i := 0; i < len(b64Alphabet); i++ {
		m[b64Alphabet[i]] = byte(i)
	}
	return m
}()

// decodeBase64 decodes standard base 64 text, padded or not, that holds
// exactly len(dst) bytes into dst. Like Nix it ignores the unused low bits
// of the last character.
func decodeBase64(dst []byte, s string) bool {
	if len(s)%4 == 0 {
		s = strings.TrimSuffix(strings.TrimSuffix(s, "="), "=")
	}
	if len(s)*6/8 != len(dst) || len(s) != (len(dst)*8+5)/6 {
		return false
	}
	var acc uint32
	bits, n := 0, 0
	for i := 0; i < len(s); i++ {
		d := b64Map[s[i]]
		if d == 0xff {
			return false
		}
		acc = acc<<6 | uint32(d)
		bits += 6
		if bits >= 8 {
			bits -= 8
			dst[n] = byte(acc >> bits)
			n++
		}
	}
	return true
}
