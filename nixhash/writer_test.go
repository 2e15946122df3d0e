package nixhash

import (
	"crypto/sha256"
	"io"
	"strings"
	"testing"
)

func TestSHA256Writer(t *testing.T) {
	w := NewSHA256Writer()
	data := strings.Repeat("nix", 10_000)
	if n, err := io.Copy(w, strings.NewReader(data)); n != int64(len(data)) || err != nil {
		t.Fatalf("io.Copy = %d, %v", n, err)
	}
	if w.Size() != int64(len(data)) {
		t.Fatalf("Size = %d, want %d", w.Size(), len(data))
	}
	if want := NewSHA256(sha256.Sum256([]byte(data))); w.Sum() != want {
		t.Fatalf("Sum = %s, want %s", w.Sum(), want)
	}
	if empty := NewSHA256Writer(); empty.Sum() != NewSHA256(sha256.Sum256(nil)) || empty.Size() != 0 {
		t.Fatalf("empty writer: %s, %d bytes", empty.Sum(), empty.Size())
	}
}
