package nixbase32

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// vectors were produced by Nix 2.8.0:
// nix-hash --type <algo> --to-base32 <hex>.
var vectors = []struct {
	hex, nix32 string
}{
	// md5("abc")
	{"900150983cd24fb0d6963f7d28e17f72", "3jgzhjhz9zjvbb0kyj7jc500ch"},
	// sha1("abc")
	{"a9993e364706816aba3e25717850c26c9cd0d89d", "kpcd173cq987hw957sx6m0868wv3x6d9"},
	// sha256("")
	{"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73"},
	// sha256("abc")
	{"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
		"1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s"},
	// sha512("abc")
	{"ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a" +
		"2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
		"2gs8k559z4rlahfx0y688s49m2vvszylcikrfinm30ly9rak69236nkam5ydvly1ai7xac99vxfc4ii84hawjbk876blyk1jfhkbbyx"},
	// a NarHash from a narinfo written by Nix (protocol.md §2)
	{"", "1awaic5pspc5vb6rjnd0icr7426ndaxa27fwwxn26dbs3fdczvdh"},
}

func TestVectors(t *testing.T) {
	for _, v := range vectors {
		raw, err := DecodeString(v.nix32)
		if err != nil {
			t.Fatalf("DecodeString(%q): %v", v.nix32, err)
		}
		if v.hex != "" && hex.EncodeToString(raw) != v.hex {
			t.Errorf("DecodeString(%q) = %x, want %s", v.nix32, raw, v.hex)
		}
		if got := EncodeToString(raw); got != v.nix32 {
			t.Errorf("EncodeToString(%x) = %q, want %q", raw, got, v.nix32)
		}
		if err := ValidateString(v.nix32); err != nil {
			t.Errorf("ValidateString(%q): %v", v.nix32, err)
		}
	}
}

// reference encodes src as Nix does, read as a little-endian integer
// printed in base 32, most significant digit first, zero-padded.
func reference(src []byte) string {
	be := slices.Clone(src)
	slices.Reverse(be)
	n := new(big.Int).SetBytes(be)
	out := make([]byte, EncodedLen(len(src)))
	thirtyTwo := big.NewInt(32)
	d := new(big.Int)
	for i := len(out) - 1; i >= 0; i-- {
		n.DivMod(n, thirtyTwo, d)
		out[i] = Alphabet[d.Int64()]
	}
	return string(out)
}

func TestAgainstReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for size := 0; size <= 80; size++ {
		for range 20 {
			src := make([]byte, size)
			for i := range src {
				src[i] = byte(r.Uint32())
			}
			want := reference(src)
			if got := EncodeToString(src); got != want {
				t.Fatalf("EncodeToString(%x) = %q, reference %q", src, got, want)
			}
			got, err := DecodeString(want)
			if err != nil || !bytes.Equal(got, src) {
				t.Fatalf("DecodeString(%q) = %x, %v; want %x", want, got, err, src)
			}
		}
	}
}

func TestLengths(t *testing.T) {
	tests := []struct{ bytes, chars int }{
		{0, 0}, {1, 2}, {2, 4}, {3, 5}, {4, 7}, {5, 8}, {6, 10},
		{16, 26}, {20, 32}, {32, 52}, {64, 103},
	}
	for _, tt := range tests {
		if got := EncodedLen(tt.bytes); got != tt.chars {
			t.Errorf("EncodedLen(%d) = %d, want %d", tt.bytes, got, tt.chars)
		}
		if got := DecodedLen(tt.chars); got != tt.bytes {
			t.Errorf("DecodedLen(%d) = %d, want %d", tt.chars, got, tt.bytes)
		}
	}
}

func TestReject(t *testing.T) {
	sha256Zero := strings.Repeat("0", 52)
	tests := []struct {
		name, in string
	}{
		{"length 1", "0"},
		{"length 3", "000"},
		{"length 6", "000000"},
		{"length 51", sha256Zero[:51]},
		{"letter e", "e" + sha256Zero[1:]},
		{"letter o", sha256Zero[:10] + "o" + sha256Zero[11:]},
		{"letter u", sha256Zero[:51] + "u"},
		{"letter t", "t0"},
		{"upper case", "A0"},
		{"space", " 0"},
		{"NUL", "\x000"},
		{"high byte", "\xff0"},
		// 52 chars hold 260 bits for 256: the first character must be 0 or 1.
		{"sha256 overflow 2", "2" + sha256Zero[1:]},
		{"sha256 overflow z", "z" + sha256Zero[1:]},
		// 2 chars hold 10 bits for 8: the first character must be 0..7.
		{"one byte overflow", "80"},
		// 32 chars hold exactly 160 bits: no overflow possible, but bad chars still fail.
		{"store hash bad char", strings.Repeat("0", 31) + "e"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := ValidateString(tt.in); !errors.Is(err, ErrInvalid) {
				t.Errorf("ValidateString(%q) = %v, want ErrInvalid", tt.in, err)
			}
			if b, err := DecodeString(tt.in); !errors.Is(err, ErrInvalid) {
				t.Errorf("DecodeString(%q) = %x, %v, want ErrInvalid", tt.in, b, err)
			}
			dst := make([]byte, 64)
			if n, err := Decode(dst, []byte(tt.in)); !errors.Is(err, ErrInvalid) || n != 0 {
				t.Errorf("Decode(%q) = %d, %v, want 0, ErrInvalid", tt.in, n, err)
			}
			if n, err := DecodeStringTo(dst, tt.in); !errors.Is(err, ErrInvalid) || n != 0 {
				t.Errorf("DecodeStringTo(%q) = %d, %v, want 0, ErrInvalid", tt.in, n, err)
			}
		})
	}
}

func TestAcceptEdges(t *testing.T) {
	tests := []struct {
		in   string
		want []byte
	}{
		{"", []byte{}},
		{"70", []byte{0xe0}},
		{"7z", []byte{0xff}},
		{"1" + strings.Repeat("z", 51), bytes.Repeat([]byte{0xff}, 32)},
		{strings.Repeat("z", 32), bytes.Repeat([]byte{0xff}, 20)},
	}
	for _, tt := range tests {
		got, err := DecodeString(tt.in)
		if err != nil || !bytes.Equal(got, tt.want) {
			t.Errorf("DecodeString(%q) = %x, %v; want %x", tt.in, got, err, tt.want)
		}
	}
}

func TestDecodeShortDst(t *testing.T) {
	_, err := Decode(make([]byte, 31), []byte(vectors[2].nix32))
	if !errors.Is(err, io.ErrShortBuffer) {
		t.Fatalf("Decode into 31 bytes: %v, want io.ErrShortBuffer", err)
	}
}

func TestDecodeReusesDirtyDst(t *testing.T) {
	dst := bytes.Repeat([]byte{0xaa}, 32)
	n, err := Decode(dst, []byte(strings.Repeat("0", 52)))
	if err != nil || n != 32 || !bytes.Equal(dst, make([]byte, 32)) {
		t.Fatalf("Decode over dirty dst = %d, %v, %x", n, err, dst)
	}
}

func TestAppendEncode(t *testing.T) {
	raw, _ := hex.DecodeString(vectors[3].hex)
	got := AppendEncode([]byte("sha256:"), raw)
	if string(got) != "sha256:"+vectors[3].nix32 {
		t.Fatalf("AppendEncode = %q", got)
	}
	buf := make([]byte, 0, 64)
	if got := AppendEncode(buf, raw); &got[0] != &buf[:1][0] {
		t.Error("AppendEncode reallocated although dst had room")
	}
}

func TestNoAllocs(t *testing.T) {
	raw, _ := hex.DecodeString(vectors[3].hex)
	enc := []byte(vectors[3].nix32)
	s := vectors[3].nix32
	dst := make([]byte, 64)
	buf := make([]byte, 0, 64)
	checks := map[string]func(){
		"Encode":         func() { Encode(dst, raw) },
		"AppendEncode":   func() { buf = AppendEncode(buf[:0], raw) },
		"Decode":         func() { _, _ = Decode(dst, enc) },
		"DecodeStringTo": func() { _, _ = DecodeStringTo(dst, s) },
		"ValidateString": func() { _ = ValidateString(s) },
	}
	for name, f := range checks {
		if a := testing.AllocsPerRun(100, f); a != 0 {
			t.Errorf("%s: %v allocations per call, want 0", name, a)
		}
	}
}
