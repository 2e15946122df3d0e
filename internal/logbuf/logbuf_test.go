package logbuf

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nix-cached/cached/internal/syncbuf"
)

// countingWriter counts the writes it gets.
type countingWriter struct {
	syncbuf.Buffer
	mu     sync.Mutex
	writes int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes++
	c.mu.Unlock()
	return c.Buffer.Write(p)
}

func TestBatchesAndKeepsOrder(t *testing.T) {
	var dst countingWriter
	w := New(&dst, time.Hour) // only Close flushes
	var want strings.Builder
	for i := range 100 {
		line := strings.Repeat("x", i) + "\n"
		want.WriteString(line)
		if n, err := w.Write([]byte(line)); n != len(line) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if got := dst.String(); got != "" {
		t.Fatalf("%d bytes written before any flush", len(got))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if dst.String() != want.String() {
		t.Fatalf("after Close: %q..., want the 100 lines in order", dst.String()[:min(40, len(dst.String()))])
	}
	if dst.writes != 1 {
		t.Fatalf("%d writes for 100 small lines, want 1", dst.writes)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestFlushesOnTimerAndWhenFull(t *testing.T) {
	var dst countingWriter
	w := New(&dst, 10*time.Millisecond)
	defer w.Close()
	w.Write([]byte("tick\n"))
	deadline := time.Now().Add(time.Minute)
	for dst.String() != "tick\n" {
		if time.Now().After(deadline) {
			t.Fatal("the timer never flushed")
		}
		time.Sleep(time.Millisecond)
	}
	big := strings.Repeat("y", maxBatch-10) + "\n"
	var full countingWriter
	w3 := New(&full, time.Hour)
	w3.Write([]byte(big))
	w3.Write([]byte(big)) // would overflow: the first goes out whole
	if full.String() != big {
		t.Fatalf("after overflowing: %d bytes out, want the first line (%d)", len(full.String()), len(big))
	}
	w3.Close()
	if full.String() != big+big {
		t.Fatalf("after Close: %d bytes, want %d", len(full.String()), 2*len(big))
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteErrorSticks(t *testing.T) {
	w := New(failingWriter{}, time.Hour)
	w.Write([]byte("a\n"))
	if err := w.Flush(); err == nil {
		t.Fatal("Flush hid the write error")
	}
	if _, err := w.Write([]byte("b\n")); err == nil {
		t.Fatal("Write after a failed flush succeeded")
	}
	w.Close()
}
