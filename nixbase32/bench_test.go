package nixbase32

import (
	"encoding/hex"
	"testing"
)

func BenchmarkEncode(b *testing.B) {
	raw, _ := hex.DecodeString(vectors[3].hex)
	dst := make([]byte, EncodedLen(len(raw)))
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		Encode(dst, raw)
	}
}

func BenchmarkDecode(b *testing.B) {
	enc := []byte(vectors[3].nix32)
	dst := make([]byte, 32)
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(dst, enc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidateString(b *testing.B) {
	s := vectors[3].nix32
	b.SetBytes(int64(len(s)))
	b.ReportAllocs()
	for b.Loop() {
		if err := ValidateString(s); err != nil {
			b.Fatal(err)
		}
	}
}
