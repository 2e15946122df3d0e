package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog"
)

// TestTwoHandlesGC runs what `cached serve` and `cached gc` do at once on
// one database file through two handles: the server records uses and
// takes uploads while the collector holds the lock and deletes paths.
// Every write waits for the other's (busy_timeout) instead of failing, and
// each path the server used meanwhile is either deleted before the use or
// kept because of it, never both.
func TestTwoHandlesGC(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gc.db")
	server, cli := openT(t, path), openT(t, path)

	const count = 120
	created := catalog.FromMillis(1000)
	var doomed, live []catalog.Path
	for i := range 2 * count {
		n := testNAR(i, created)
		p := testPath(i, n)
		p.CreatedAt = created
		if err := server.PutNAR(ctx, n); err != nil {
			t.Fatal(err)
		}
		if err := server.Publish(ctx, p, catalog.PublishOptions{}); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			doomed = append(doomed, p)
		} else {
			live = append(live, p)
		}
	}
	if ok, err := cli.TryLock(ctx, "gc", "cli", time.Hour); err != nil || !ok {
		t.Fatalf("TryLock(gc) by the collector = %v, %v", ok, err)
	}

	judged := catalog.FromMillis(2000) // the collector judged every doomed path unused before this
	used := catalog.FromMillis(5000)   // when the server sees some of them used
	var wg sync.WaitGroup
	var serverErr, cliErr error
	kept := map[string]bool{}
	wg.Go(func() {
		for i := range count {
			if ok, err := server.TryLock(ctx, "gc", "server", time.Hour); err != nil || ok {
				serverErr = fmt.Errorf("TryLock(gc) by the server while the collector holds it = %v, %v", ok, err)
				return
			}
			uses := map[string]time.Time{live[i].HashPart: used, doomed[count-1-i].HashPart: used}
			nars := map[string]time.Time{live[(i+1)%count].NARKey: used}
			if err := server.RecordUse(ctx, uses, nars); err != nil {
				serverErr = err
				return
			}
			n := testNAR(10_000+i, used)
			if err := server.BeginNAR(ctx, n.Key, n.ListingKey, used); err != nil {
				serverErr = err
				return
			}
			if err := server.PutNAR(ctx, n); err != nil {
				serverErr = err
				return
			}
		}
	})
	wg.Go(func() {
		for _, p := range doomed {
			d, err := cli.DeletePath(ctx, p.HashPart, catalog.DeleteCondition{CreatedBefore: judged, UsedBefore: judged})
			if errors.Is(err, catalog.ErrKept) {
				kept[p.HashPart] = true
				continue
			}
			if err != nil {
				cliErr = err
				return
			}
			if d.NAR == nil || d.NAR.Key != p.NARKey {
				cliErr = fmt.Errorf("DeletePath(%s) returned NAR %v, want %s", p.HashPart, d.NAR, p.NARKey)
				return
			}
			if err := cli.DropNAR(ctx, d.NAR.Key); err != nil {
				cliErr = err
				return
			}
		}
	})
	wg.Wait()
	if err := errors.Join(serverErr, cliErr); err != nil {
		t.Fatalf("interleaved server and collector: %v", err)
	}
	if err := cli.Unlock(ctx, "gc", "cli"); err != nil {
		t.Fatal(err)
	}
	if ok, err := server.TryLock(ctx, "gc", "server", time.Hour); err != nil || !ok {
		t.Errorf("TryLock(gc) by the server after the collector let go = %v, %v", ok, err)
	}

	for _, p := range doomed {
		got, err := server.Path(ctx, p.HashPart)
		switch {
		case kept[p.HashPart] && (err != nil || !got.LastUsed.Equal(used)):
			t.Errorf("kept path %s: %+v, %v; want it used at %v", p.HashPart, got, err, used)
		case !kept[p.HashPart] && !errors.Is(err, catalog.ErrNotFound):
			t.Errorf("deleted path %s: error %v, want ErrNotFound", p.HashPart, err)
		}
	}
	for _, p := range live {
		if got, err := cli.Path(ctx, p.HashPart); err != nil || !got.LastUsed.Equal(used) {
			t.Errorf("live path %s: %+v, %v; want it used at %v", p.HashPart, got, err, used)
		}
	}
	if nars, err := cli.DeletingNARs(ctx); err != nil || len(nars) != 0 {
		t.Errorf("DeletingNARs after the collection = %v, %v; want none", nars, err)
	}
	t.Logf("%d of %d doomed paths were used during the collection and kept", len(kept), count)
}

// TestTryLockRace has two handles race for one free lock: exactly one
// gets it, every time.
func TestTryLockRace(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "lock.db")
	handles := []*Catalog{openT(t, path), openT(t, path)}
	for round := range 20 {
		name := fmt.Sprintf("lock-%d", round)
		got := make([]bool, 4)
		errs := make([]error, 4)
		var wg sync.WaitGroup
		for i := range got {
			wg.Go(func() {
				got[i], errs[i] = handles[i%2].TryLock(ctx, name, fmt.Sprintf("holder-%d", i), time.Hour)
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("TryLock: %v", err)
		}
		winners := 0
		for _, ok := range got {
			if ok {
				winners++
			}
		}
		if winners != 1 {
			t.Fatalf("round %d: %d holders got the lock, want 1", round, winners)
		}
	}
}
