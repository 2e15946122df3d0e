package postgres

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/internal/pgtest"
)

// TestOutage stops the database under an open catalog: every call fails
// with an error that is not ErrNotFound (a 404 that Nix would cache for an
// hour), and once the database is back the same catalog works again.
func TestOutage(t *testing.T) {
	srv := pgtest.Start(t)
	c := openURL(t, srv.NewDatabase(t)+"&pool_max_conns=12")
	ctx := context.Background()
	n := newNAR("survivor", t0)
	p := newPath("survivor", n)
	publish(t, c, n, p)
	missing := hashPart("never-published")

	calls := []struct {
		name string
		call func(context.Context) error
		// found: the call succeeds on a healthy database, or fails with
		// ErrNotFound for what was never stored.
		found bool
	}{
		{"NarInfo", func(ctx context.Context) error { _, err := c.NarInfo(ctx, p.HashPart); return err }, true},
		{"NarInfo(missing)", func(ctx context.Context) error { _, err := c.NarInfo(ctx, missing); return err }, false},
		{"Path(missing)", func(ctx context.Context) error { _, err := c.Path(ctx, missing); return err }, false},
		{"LookupNAR", func(ctx context.Context) error { _, err := c.LookupNAR(ctx, n.Key); return err }, true},
		{"LookupNAR(missing)", func(ctx context.Context) error { _, err := c.LookupNAR(ctx, "nar/x.nar"); return err }, false},
		{"Realisation(missing)", func(ctx context.Context) error { _, err := c.Realisation(ctx, "sha256:00!out"); return err }, false},
		{"TokenByHash(missing)", func(ctx context.Context) error { _, err := c.TokenByHash(ctx, []byte("nobody")); return err }, false},
		{"LastGCRun(none)", func(ctx context.Context) error { _, err := c.LastGCRun(ctx); return err }, false},
		{"BlobInUse", func(ctx context.Context) error { _, err := c.BlobInUse(ctx, n.Key); return err }, true},
		{"Publish", func(ctx context.Context) error { return c.Publish(ctx, p, catalog.PublishOptions{}) }, true},
		// Taken and released: a lock held across a restart is lost, and
		// its holder is told so (TestLockLostOnRestart).
		{"TryLock", func(ctx context.Context) error {
			ok, err := c.TryLock(ctx, "gc", "me", time.Minute)
			if ok {
				err = c.Unlock(ctx, "gc", "me")
			}
			return err
		}, true},
		{"RecordUse", func(ctx context.Context) error {
			return c.RecordUse(ctx, map[string]time.Time{p.HashPart: t0.Add(time.Hour)}, nil)
		}, true},
		{"WalkGraph", func(ctx context.Context) error {
			return c.WalkGraph(ctx, func(catalog.GraphNode) error { return nil })
		}, true},
	}
	check := func(step string, up bool) {
		t.Helper()
		for _, tc := range calls {
			ctx, cancel := context.WithTimeout(ctx, time.Minute) // a bound, not a measure
			err := tc.call(ctx)
			cancel()
			switch {
			case !up && err == nil:
				t.Errorf("%s: %s succeeded with the database down", step, tc.name)
			case !up && errors.Is(err, catalog.ErrNotFound):
				t.Errorf("%s: %s: error %v is ErrNotFound, want a failure", step, tc.name, err)
			case up && tc.found && err != nil:
				t.Errorf("%s: %s: %v", step, tc.name, err)
			case up && !tc.found && !errors.Is(err, catalog.ErrNotFound):
				t.Errorf("%s: %s: error %v, want ErrNotFound", step, tc.name, err)
			}
		}
	}
	check("before the outage", true)
	srv.Stop(t)
	check("during the outage", false)
	srv.Restart(t)
	check("after the outage", true)
	// A restart nobody noticed leaves every idle connection of the pool
	// broken, more of them than a call has attempts.
	var wg sync.WaitGroup
	for range 12 {
		wg.Go(func() {
			if _, err := c.pool.Exec(ctx, `SELECT pg_sleep(0.2)`); err != nil {
				t.Errorf("filling the pool: %v", err)
			}
		})
	}
	wg.Wait()
	if idle := c.pool.Stat().IdleConns(); idle < int32(maxAttempts)+1 {
		t.Fatalf("%d idle connections, want more than %d", idle, maxAttempts)
	}
	srv.Stop(t)
	srv.Restart(t)
	check("after an unnoticed restart", true)
	if got, err := c.NarInfo(ctx, p.HashPart); err != nil || got != p.NarInfo {
		t.Errorf("NarInfo after the outage = %q, %v; want %q", got, err, p.NarInfo)
	}
}

// TestLockLostOnRestart restarts the database under a held lock: the
// session that held it ended, so the lock may have gone to another
// holder meanwhile, and renewing it fails instead of pretending; it can
// then be taken again.
func TestLockLostOnRestart(t *testing.T) {
	srv := pgtest.Start(t)
	c := openURL(t, srv.NewDatabase(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a bound, not a measure
	defer cancel()
	if ok, err := c.TryLock(ctx, "gc", "me", time.Minute); err != nil || !ok {
		t.Fatalf("TryLock: %v %v", ok, err)
	}
	srv.Stop(t)
	srv.Restart(t)
	if ok, err := c.TryLock(ctx, "gc", "me", time.Minute); err == nil || ok {
		t.Fatalf("renewing a lock whose session ended: %v %v, want an error", ok, err)
	}
	if ok, err := c.TryLock(ctx, "gc", "me", time.Minute); err != nil || !ok {
		t.Fatalf("taking it again: %v %v", ok, err)
	}
}
