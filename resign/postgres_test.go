package resign

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/catalog/postgres"
	"github.com/nix-cached/cached/internal/pgtest"
	"github.com/nix-cached/cached/signing"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestReplicas: three replicas sharing a PostgreSQL catalog restart with
// keys a and b, each running its re-signer: one runs the pass, the others
// wait for it and then follow the change log, and every narinfo is
// rewritten exactly once.
func TestReplicas(t *testing.T) {
	url := pgtest.Shared(t).NewDatabase(t)
	ctx := context.Background()
	open := func() catalog.Catalog {
		c, err := postgres.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	e := newEnv(t)
	e.cat = open()
	onlyA := e.ingester([]signing.SecretKey{e.a})
	hashes := e.pushMany(onlyA, "replica", pageSize+10)

	both := []signing.SecretKey{e.a, e.b}
	pubs := []signing.PublicKey{e.a.Public(), e.b.Public()}
	rctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var replicas []*Resigner
	for i := range 3 {
		cat := open()
		r, err := New(cat, e.ingester(both), Options{Keys: pubs, Rate: 1e6, Holder: fmt.Sprintf("replica-%d", i),
			Logger: slog.New(slog.DiscardHandler), Poll: 20 * time.Millisecond, Retry: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		replicas = append(replicas, r)
		wg.Go(func() { r.Run(rctx) })
	}
	deadline := time.Now().Add(time.Minute)
	for {
		done := true
		for _, r := range replicas {
			done = done && r.Stats().Done
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the replicas did not all see the pass complete within a minute")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// What a replica still on key a publishes now is followed.
	late := e.push(onlyA, "late")
	deadline = time.Now().Add(time.Minute)
	for e.signers(late) != "cache-a-1 cache-b-1 client-1" {
		if time.Now().After(deadline) {
			t.Fatalf("the late path is signed by %q", e.signers(late))
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	wg.Wait()

	e.checkSigners("after the pass", hashes, "cache-a-1 cache-b-1 client-1")
	var walkers int
	var rewritten int64
	for _, r := range replicas {
		s := r.Stats()
		rewritten += s.Rewritten
		if s.Checked >= int64(len(hashes)) {
			walkers++
		}
	}
	if walkers != 1 || rewritten != int64(len(hashes))+1 {
		t.Errorf("%d replicas walked the paths, %d narinfos rewritten in all; want 1 and %d", walkers, rewritten, len(hashes)+1)
	}
	if st := e.state(); st.Completed.IsZero() || st.Checked != int64(len(hashes)) {
		t.Errorf("state %+v", st)
	}
}
