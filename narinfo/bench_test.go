package narinfo

import (
	"os"
	"testing"
)

func benchInput(b *testing.B) []byte {
	data, err := os.ReadFile("testdata/top-none-signed.narinfo")
	if err != nil {
		b.Fatal(err)
	}
	return data
}

func BenchmarkParse(b *testing.B) {
	data := benchInput(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendText(b *testing.B) {
	ni, err := Parse(benchInput(b))
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = ni.AppendText(buf[:0])
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkFingerprint(b *testing.B) {
	ni, err := Parse(benchInput(b))
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		if buf, err = ni.AppendFingerprint(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}
