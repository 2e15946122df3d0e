package usage

import (
	"context"
	"errors"
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
