package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/internal/pgtest"
)

// replicas opens n catalogs, each with its own pool, on one new database.
func replicas(t *testing.T, n int) []*Catalog {
	t.Helper()
	url := pgtest.Shared(t).NewDatabase(t)
	cs := make([]*Catalog, n)
	for i := range cs {
		cs[i] = openURL(t, url)
	}
	return cs
}

// noRetries makes every transaction fail at its first deadlock or
// serialization failure until the test ends.
func noRetries(t *testing.T) {
	saved := maxAttempts
	maxAttempts = 1
	t.Cleanup(func() { maxAttempts = saved })
}

// TestTryLockOneHolder has four replicas race for the GC lock, round after
// round: exactly one gets it each time.
func TestTryLockOneHolder(t *testing.T) {
	cs := replicas(t, 4)
	ctx := context.Background()
	for round := range 50 {
		got := make([]bool, len(cs))
		errs := make([]error, len(cs))
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, c := range cs {
			wg.Go(func() {
				<-start
				got[i], errs[i] = c.TryLock(ctx, "gc", fmt.Sprintf("replica-%d", i), time.Hour)
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i := range cs {
			must(t, "TryLock", errs[i])
			if got[i] {
				if winner >= 0 {
					t.Fatalf("round %d: replicas %d and %d both hold the lock", round, winner, i)
				}
				winner = i
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: nobody got the free lock", round)
		}
		must(t, "Unlock", cs[winner].Unlock(ctx, "gc", fmt.Sprintf("replica-%d", winner)))
	}
}

// TestRecordUseFromReplicas has three replicas flush overlapping batches
// of uses, by hash part and by NAR key, at the same time and without
// retries: the batches lock their rows in one order, so none deadlocks,
// and every path ends with the latest of its uses.
func TestRecordUseFromReplicas(t *testing.T) {
	cs := replicas(t, 3)
	noRetries(t)
	ctx := context.Background()
	const paths = 400
	var hashes, keys []string
	latest := map[string]time.Time{}
	for i := range paths {
		seed := fmt.Sprint("used", i)
		n := newNAR(seed, t0)
		if i%2 == 1 { // pairs of paths share a NAR
			n = newNAR(fmt.Sprint("used", i-1), t0)
		} else {
			keys = append(keys, n.Key)
		}
		p := newPath(seed, n)
		publish(t, cs[0], n, p)
		hashes = append(hashes, p.HashPart)
		latest[p.HashPart] = t0
	}

	type batch struct{ paths, nars map[string]time.Time }
	r := rand.New(rand.NewPCG(1, 2))
	var batches [][]batch
	for range cs {
		var mine []batch
		for range 15 {
			b := batch{map[string]time.Time{}, map[string]time.Time{}}
			for range 150 {
				at := t0.Add(time.Duration(r.IntN(1e6)) * time.Millisecond)
				b.paths[hashes[r.IntN(len(hashes))]] = at
			}
			for range 40 {
				i := r.IntN(len(keys))
				at := t0.Add(time.Duration(r.IntN(1e6)) * time.Millisecond)
				b.nars[keys[i]] = at
			}
			mine = append(mine, b)
		}
		batches = append(batches, mine)
	}
	for _, mine := range batches {
		for _, b := range mine {
			for h, at := range b.paths {
				if at.After(latest[h]) {
					latest[h] = at
				}
			}
			for k, at := range b.nars {
				i := slicesIndex(keys, k)
				for _, h := range hashes[2*i : 2*i+2] {
					if at.After(latest[h]) {
						latest[h] = at
					}
				}
			}
		}
	}

	var wg sync.WaitGroup
	errs := make([]error, len(cs))
	for i, c := range cs {
		wg.Go(func() {
			for _, b := range batches[i] {
				if err := c.RecordUse(ctx, b.paths, b.nars); err != nil {
					errs[i] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		must(t, "RecordUse", err)
	}
	for _, h := range hashes {
		p, err := cs[1].Path(ctx, h)
		must(t, "Path", err)
		if !p.LastUsed.Equal(latest[h]) {
			t.Errorf("LastUsed(%s) = %v, want the latest use %v", h, p.LastUsed, latest[h])
		}
	}
}

// slicesIndex returns the index of v in s, or -1.
func slicesIndex(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// TestDeletePathsWithUses has one replica delete paths in batches, in an
// order of its own, while others record uses of the same paths, without
// retries: no deadlock, and every path is either deleted or kept.
func TestDeletePathsWithUses(t *testing.T) {
	cs := replicas(t, 3)
	noRetries(t)
	ctx := context.Background()
	const paths = 300
	hashes := publishMany(t, cs[0], "swept", paths)
	r := rand.New(rand.NewPCG(3, 4))
	order := append([]string(nil), hashes...)
	r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	cond := catalog.DeleteCondition{UsedBefore: t0.Add(time.Hour)}

	var wg sync.WaitGroup
	errs := make([]error, len(cs))
	wg.Go(func() {
		for i := 0; i < len(order); i += 30 {
			if _, err := cs[0].DeletePaths(ctx, order[i:i+30], cond); err != nil {
				errs[0] = err
				return
			}
		}
	})
	for i := 1; i < len(cs); i++ {
		r := rand.New(rand.NewPCG(5, uint64(i)))
		wg.Go(func() {
			for range 10 {
				uses := map[string]time.Time{}
				for range 40 {
					uses[hashes[r.IntN(len(hashes))]] = t0.Add(2 * time.Hour)
				}
				if err := cs[i].RecordUse(ctx, uses, nil); err != nil {
					errs[i] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		must(t, "concurrent DeletePaths and RecordUse", err)
	}
	kept := 0
	for _, h := range hashes {
		p, err := cs[0].Path(ctx, h)
		if err == nil {
			kept++
			if p.LastUsed.Before(t0.Add(time.Hour)) {
				t.Errorf("path %s was neither deleted nor used", h)
			}
		}
	}
	t.Logf("%d of %d paths kept by a use", kept, paths)
}

// TestRacePublishSamePath has two replicas publish the same new path at
// once, as two clients pushing one closure do: both succeed and the path
// is recorded once, with its references; with different contents one of
// them is refused.
func TestRacePublishSamePath(t *testing.T) {
	a, b := twoReplicas(t)
	ctx := context.Background()
	conflicts := 0
	for i := range 60 {
		dep := newNAR(fmt.Sprint("dep", i), t0)
		publish(t, a, dep, newPath(fmt.Sprint("dep", i), dep))
		n := newNAR(fmt.Sprint("same", i), t0)
		must(t, "PutNAR", a.PutNAR(ctx, n))
		p := newPath(fmt.Sprint("same", i), n, fmt.Sprint("same", i), fmt.Sprint("dep", i))
		q := p
		q.NarInfo += "Sig: other\n"
		q.CreatedAt = t0.Add(time.Minute)
		if i%2 == 1 { // other contents under the same store path
			other := newNAR(fmt.Sprint("other", i), t0)
			must(t, "PutNAR", b.PutNAR(ctx, other))
			q.NARKey, q.NarHash = other.Key, other.NarHash
		}
		var errA, errB error
		race(func() { errA = a.Publish(ctx, p, catalog.PublishOptions{}) },
			func() { errB = b.Publish(ctx, q, catalog.PublishOptions{}) })
		got, err := b.Path(ctx, p.HashPart)
		must(t, "Path", err)
		if len(got.References) != 2 {
			t.Errorf("round %d: references %q, want 2", i, got.References)
		}
		if i%2 == 0 {
			must(t, "Publish(a)", errA)
			must(t, "Publish(b)", errB)
			if !got.CreatedAt.Equal(t0) && !got.CreatedAt.Equal(t0.Add(time.Minute)) {
				t.Errorf("round %d: CreatedAt %v", i, got.CreatedAt)
			}
			continue
		}
		switch {
		case errA == nil && errors.Is(errB, catalog.ErrConflict) && got.NarHash == p.NarHash,
			errB == nil && errors.Is(errA, catalog.ErrConflict) && got.NarHash == q.NarHash:
			conflicts++
		default:
			t.Fatalf("round %d: Publish: %v and %v; recorded NarHash %s", i, errA, errB, got.NarHash)
		}
	}
	if conflicts != 30 {
		t.Errorf("%d conflicting pushes refused, want 30", conflicts)
	}
}
