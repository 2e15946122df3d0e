package ingest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/nix-cached/cached/nar"
)

// zeros reads as many zero bytes as asked.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestNARTooLarge uploads a zstd bomb (4 MiB of zeros in a few hundred
// bytes) to a cache that takes NARs up to 1 MiB: it is refused with
// ErrTooLarge, and nothing is stored.
func TestNARTooLarge(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.MaxNARSize = 1 << 20 })
	plain := makeNAR(t, entry{path: "/", typ: nar.TypeRegular, contents: strings.Repeat("\x00", 4<<20)})
	for _, comp := range []string{CompZstd, CompXZ, CompNone} {
		body := compress(t, comp, plain)
		_, err := f.ing.NAR(context.Background(), nameFor(comp, body), bytes.NewReader(body), int64(len(body)))
		if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "expands to more than 1048576 bytes") {
			t.Errorf("%s bomb of %d bytes: %v, want ErrTooLarge", comp, len(body), err)
		}
	}
	if k := keys(t, f.store); len(k) > 0 {
		t.Errorf("refused bombs left blobs: %v", k)
	}
	// The same NAR is taken when the limit allows it.
	g := newFixture(t, nil)
	body := compress(t, CompZstd, plain)
	if _, err := g.ing.NAR(context.Background(), nameFor(CompZstd, body), bytes.NewReader(body), int64(len(body))); err != nil {
		t.Fatalf("under the default limit: %v", err)
	}
}

// TestExpansionLanes checks that uploads expanding past the free ratio run
// one at a time per uploader: a second one of the same uploader waits for
// the first to finish, one of another uploader does not.
func TestExpansionLanes(t *testing.T) {
	var l lanes
	start := func(id string) (*expansion, chan error) {
		ctx := WithUploader(context.Background(), id)
		in := &countingReader{r: strings.NewReader("x")}
		if _, err := io.ReadAll(in); err != nil { // one byte received
			t.Fatal(err)
		}
		e := &expansion{ctx: ctx, r: io.LimitReader(zeros{}, 4096), in: in, max: 1 << 20, free: 1024, ratio: 100, lanes: &l}
		done := make(chan error, 1)
		go func() { _, err := io.Copy(io.Discard, e); done <- err }()
		return e, done
	}
	first, done := start("alice")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if w, taken := l.stats(); w != 0 || taken != 1 {
		t.Fatalf("after the first: %d waiting, %d taken; want 0, 1", w, taken)
	}
	second, done2 := start("alice")
	for w, _ := l.stats(); w != 1; w, _ = l.stats() {
		select {
		case err := <-done2:
			t.Fatalf("the second upload of the same uploader did not wait: %v", err)
		case <-time.After(time.Millisecond):
		}
	}
	other, done3 := start("bob")
	if err := <-done3; err != nil {
		t.Fatalf("another uploader's upload: %v", err)
	}
	other.close()
	first.close()
	if err := <-done2; err != nil {
		t.Fatalf("the second upload after the first finished: %v", err)
	}
	second.close()
	if w, taken := l.stats(); w != 0 || taken != 3 || len(l.m) != 0 {
		t.Errorf("at the end: %d waiting, %d taken, %d lanes; want 0, 3, 0", w, taken, len(l.m))
	}
}
