package nixhash

import "testing"

func BenchmarkParseNix32(b *testing.B) {
	s := "sha256:" + forms[2].nix32
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseHex(b *testing.B) {
	s := "sha256:" + forms[2].hex
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendText(b *testing.B) {
	h, err := Parse(forms[2].sri)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		buf = h.AppendText(buf[:0])
	}
}
