package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/nix-cached/cached/catalog"
)

// TestChangesFollowedDuringWrites has replicas publish and delete paths in
// parallel, without retries, while another follows the change log as the
// serving processes do: it asks for the changes after the last Seq it saw,
// with no pause. Identity values are drawn in insert order, not commit
// order, so without the table lock of queueChanges a change would commit
// behind a Seq the follower has already passed and never be seen. At the
// end the follower must have seen the whole log, and the log must hold
// one entry per successful Publish and deletion. No transaction may fail
// on a deadlock either.
func TestChangesFollowedDuringWrites(t *testing.T) {
	cs := replicas(t, 4)
	noRetries(t)
	ctx := context.Background()
	const (
		base      = 120 // published before, referenced and deleted during
		writers   = 4
		perWriter = 60
		batch     = 8
	)
	bases := publishMany(t, cs[0], "base", base)
	start, err := cs[0].LastChange(ctx)
	must(t, "LastChange", err)

	// want counts the entries the successful calls must have recorded.
	var mu sync.Mutex
	want := map[string]int{}
	record := func(h string) {
		mu.Lock()
		want[h]++
		mu.Unlock()
	}

	var followed []catalog.Change
	var followErr error
	var done atomic.Bool
	var follower sync.WaitGroup
	follower.Go(func() {
		last := start
		for {
			finished := done.Load() // read first: a last pass after it sees everything
			page, err := cs[3].Changes(ctx, last, 50)
			if err != nil {
				followErr = err
				return
			}
			for _, ch := range page {
				followed = append(followed, ch)
				last = ch.Seq
			}
			if finished && len(page) == 0 {
				return
			}
		}
	})

	var wg sync.WaitGroup
	var deleted atomic.Int64
	errs := make([]error, writers+1)
	for w := range writers {
		wg.Go(func() {
			c := cs[w%3]
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range perWriter {
				seed := fmt.Sprint("w", w, "-", i)
				n := newNAR(seed, t0)
				p := newPath(seed, n)
				// A base that stays, and sometimes one being deleted.
				p.References = []string{bases[2*r.IntN(base/2)]}
				if r.IntN(4) == 0 {
					p.References = append(p.References, bases[2*r.IntN(base/2)+1])
				}
				if errs[w] = c.PutNAR(ctx, n); errs[w] != nil {
					return
				}
				err := c.Publish(ctx, p, catalog.PublishOptions{})
				switch {
				case err == nil:
					record(p.HashPart)
				case !errors.Is(err, catalog.ErrMissingReferences): // its reference was deleted
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Go(func() {
		var order []string // the odd bases
		for i := 1; i < base; i += 2 {
			order = append(order, bases[i])
		}
		rand.New(rand.NewPCG(3, 4)).Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for chunk := range slices.Chunk(order, batch) {
			res, err := cs[2].DeletePaths(ctx, chunk, catalog.DeleteCondition{})
			if err != nil {
				errs[writers] = err
				return
			}
			for i, r := range res {
				if r.Err == nil {
					record(chunk[i])
					deleted.Add(1)
				}
			}
		}
	})
	wg.Wait()
	done.Store(true)
	follower.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("writer %d: %v%s", i, err, pgDetail(err))
		}
	}
	must(t, "following Changes", followErr)

	var log []catalog.Change
	for after := start; ; {
		page, err := cs[0].Changes(ctx, after, 1000)
		must(t, "Changes", err)
		if len(page) == 0 {
			break
		}
		log = append(log, page...)
		after = page[len(page)-1].Seq
	}
	got := map[string]int{}
	for _, ch := range log {
		got[ch.HashPart]++
	}
	total := 0
	for h, n := range want {
		total += n
		if got[h] != n {
			t.Errorf("change log has %s %d times, want %d", h, got[h], n)
		}
	}
	if len(log) != total {
		t.Errorf("change log has %d entries, want %d", len(log), total)
	}
	var missed []int64
	for _, ch := range log {
		if _, ok := slices.BinarySearchFunc(followed, ch.Seq, func(c catalog.Change, s int64) int {
			return cmp.Compare(c.Seq, s)
		}); !ok {
			missed = append(missed, ch.Seq)
		}
	}
	if len(missed) > 0 || len(followed) != len(log) {
		t.Errorf("the follower saw %d of the %d entries; it missed seq %v", len(followed), len(log), missed)
	}
	t.Logf("%d entries, %d of them deletions", len(log), deleted.Load())
}

// pgDetail returns the detail of a PostgreSQL error (a deadlock's names
// the locks), or "".
func pgDetail(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Detail != "" {
		return "\n" + pe.Detail
	}
	return ""
}
