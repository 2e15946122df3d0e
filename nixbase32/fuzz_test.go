package nixbase32

import (
	"bytes"
	"testing"
)

func FuzzDecode(f *testing.F) {
	for _, v := range vectors {
		f.Add(v.nix32)
	}
	f.Add("")
	f.Add("7z")
	f.Add("80")
	f.Add("2" + vectors[3].nix32[1:])
	f.Fuzz(func(t *testing.T, s string) {
		raw, err := DecodeString(s)
		verr := ValidateString(s)
		if (err == nil) != (verr == nil) {
			t.Fatalf("DecodeString error %v but ValidateString error %v", err, verr)
		}
		dst := make([]byte, DecodedLen(len(s)))
		n, derr := Decode(dst, []byte(s))
		if (err == nil) != (derr == nil) {
			t.Fatalf("DecodeString error %v but Decode error %v", err, derr)
		}
		if err != nil {
			return
		}
		if n != len(raw) || !bytes.Equal(dst[:n], raw) {
			t.Fatalf("Decode = %x, DecodeString = %x", dst[:n], raw)
		}
		if got := EncodeToString(raw); got != s {
			t.Fatalf("EncodeToString(DecodeString(%q)) = %q", s, got)
		}
	})
}

func FuzzEncode(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0xff})
	f.Add(bytes.Repeat([]byte{0xa5}, 32))
	f.Fuzz(func(t *testing.T, src []byte) {
		s := EncodeToString(src)
		if len(s) != EncodedLen(len(src)) {
			t.Fatalf("len(EncodeToString) = %d, want %d", len(s), EncodedLen(len(src)))
		}
		got, err := DecodeString(s)
		if err != nil || !bytes.Equal(got, src) {
			t.Fatalf("DecodeString(EncodeToString(%x)) = %x, %v", src, got, err)
		}
	})
}
