package usage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// tally is a Store that keeps what it was given; it fails on demand to
// inject a database error.
type tally struct {
	mu    sync.Mutex
	calls int
	paths map[string]time.Time
	nars  map[string]time.Time
	fail  error
}

func (t *tally) RecordUse(_ context.Context, paths, nars map[string]time.Time) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.fail != nil {
		return t.fail
	}
	t.calls++
	if t.paths == nil {
		t.paths, t.nars = map[string]time.Time{}, map[string]time.Time{}
	}
	merge(t.paths, paths)
	merge(t.nars, nars)
	return nil
}

func TestBatchesAndRetries(t *testing.T) {
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	st := &tally{}
	r := New(st, clock, nil)
	for i := 0; i < 1000; i++ {
		r.Path("aaaa")
		r.NAR("nar/x.nar.zst")
	}
	now = now.Add(time.Minute)
	r.Path("bbbb")
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st.calls != 1 || len(st.paths) != 2 || len(st.nars) != 1 || !st.paths["bbbb"].Equal(now) {
		t.Fatalf("after one flush: %d calls, %v, %v", st.calls, st.paths, st.nars)
	}
	if err := r.Flush(context.Background()); err != nil || st.calls != 1 {
		t.Fatalf("an empty flush wrote: %d calls, %v", st.calls, err)
	}

	// A failed flush keeps its uses for the next one.
	st.fail = errors.New("database is locked")
	r.Path("cccc")
	if err := r.Flush(context.Background()); err == nil {
		t.Fatal("the store's error was lost")
	}
	st.fail = nil
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := st.paths["cccc"]; !ok {
		t.Fatal("a use was lost after a failed flush")
	}
}

func TestRunFlushesAtShutdown(t *testing.T) {
	st := &tally{}
	r := New(st, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx, time.Hour); close(done) }()
	r.Path("dddd")
	cancel()
	<-done
	if _, ok := st.paths["dddd"]; !ok {
		t.Fatal("Run did not flush at shutdown")
	}
}

// A path asked for again within Resolution of its last recorded use is
// not written again; at Resolution it is.
func TestRepeatedUsesWithinResolution(t *testing.T) {
	now := time.Unix(1000, 0)
	st := &tally{}
	r := New(st, func() time.Time { return now }, nil)
	hash := "0123456789abcdfghijklmnpqrsvwxyz" // 32 characters
	flush := func() {
		t.Helper()
		if err := r.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	r.Path(hash)
	flush()
	if st.calls != 1 || !st.paths[hash].Equal(now) {
		t.Fatalf("first use: %d calls, %v", st.calls, st.paths)
	}
	first := now
	now = now.Add(Resolution - time.Second)
	r.Path(hash)
	flush()
	if st.calls != 1 || !st.paths[hash].Equal(first) {
		t.Fatalf("a use within Resolution was written: %d calls, %v", st.calls, st.paths)
	}
	now = first.Add(Resolution)
	r.Path(hash)
	flush()
	if st.calls != 2 || !st.paths[hash].Equal(now) {
		t.Fatalf("a use Resolution after the last recorded one: %d calls, %v", st.calls, st.paths)
	}
	// Much later, with generations turned in between, it is written again.
	now = now.Add(10 * Resolution)
	r.Path(hash)
	flush()
	if st.calls != 3 || !st.paths[hash].Equal(now) {
		t.Fatalf("a use long after: %d calls, %v", st.calls, st.paths)
	}
}

// The memory of recorded uses is bounded: paths beyond it are recorded
// every time.
func TestRecentUsesBounded(t *testing.T) {
	now := time.Unix(1000, 0)
	r := New(&tally{}, func() time.Time { return now }, nil)
	for i := range maxRecent + 10 {
		r.Path(fmt.Sprintf("%032d", i))
	}
	if len(r.recent) != maxRecent || len(r.paths) != maxRecent+10 {
		t.Fatalf("%d remembered, %d pending; want %d and %d", len(r.recent), len(r.paths), maxRecent, maxRecent+10)
	}
	extra := fmt.Sprintf("%032d", maxRecent+5)
	delete(r.paths, extra)
	r.Path(extra)
	if _, ok := r.paths[extra]; !ok {
		t.Fatal("a use of a path beyond the bound was not recorded")
	}
}
