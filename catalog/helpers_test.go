package catalog

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// keys returns n keys that sort in order.
func keys(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("k%05d", i)
	}
	return out
}

// pager serves keyset pages of all, counting the reads in flight.
type pager struct {
	all      []string
	inFlight atomic.Int32
	reads    atomic.Int32
	failAt   string // a read after this key fails
}

func (p *pager) read(size int) func(after string) ([]string, error) {
	return func(after string) ([]string, error) {
		p.inFlight.Add(1)
		defer p.inFlight.Add(-1)
		p.reads.Add(1)
		if p.failAt != "" && after == p.failAt {
			return nil, errors.New("disk on fire")
		}
		i, _ := slices.BinarySearch(p.all, after)
		if i < len(p.all) && p.all[i] == after {
			i++
		}
		return p.all[i:min(i+size, len(p.all))], nil
	}
}

func ident(s string) string { return s }

func TestWalkBatchesVisitsEveryItemOnceInOrder(t *testing.T) {
	for _, n := range []int{0, 1, 9, 10, 11, 30, 95} {
		p := &pager{all: keys(n)}
		var got []string
		err := WalkBatches("walk", 10, ident, p.read(10), func(s string) error {
			got = append(got, s)
			return nil
		})
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if !slices.Equal(got, p.all) {
			t.Errorf("n=%d: visited %d items %v..., want %d in order", n, len(got), got[:min(3, len(got))], n)
		}
		// A full last batch needs one more read to see the end.
		if want := n/10 + 1; int(p.reads.Load()) != want {
			t.Errorf("n=%d: %d reads, want %d", n, p.reads.Load(), want)
		}
	}
}

func TestWalkBatchesStopsOnCallbackError(t *testing.T) {
	p := &pager{all: keys(50)}
	stop := errors.New("enough")
	seen := 0
	err := WalkBatches("walk", 10, ident, p.read(10), func(s string) error {
		seen++
		if s == "k00013" {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || err.Error() != "enough" {
		t.Fatalf("err = %v, want the callback's error as is", err)
	}
	if seen != 14 {
		t.Errorf("callback ran %d times, want 14", seen)
	}
	if f := p.inFlight.Load(); f != 0 {
		t.Errorf("%d reads still running after the walk returned", f)
	}
	// Batch 0, batch 1 and the prefetch of batch 2; nothing after.
	if r := p.reads.Load(); r != 3 {
		t.Errorf("%d reads, want 3", r)
	}
}

func TestWalkBatchesWrapsReadErrors(t *testing.T) {
	p := &pager{all: keys(50), failAt: "k00019"}
	seen := 0
	err := WalkBatches("sqlite catalog: walk graph", 10, ident, p.read(10), func(string) error {
		seen++
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), `sqlite catalog: walk graph after "k00019": disk on fire`) {
		t.Fatalf("err = %v, want it to name the walk and the position", err)
	}
	if seen != 20 {
		t.Errorf("callback ran %d times before the failed read, want 20", seen)
	}
}
