package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog"
)

// queued reports how many writes wait for a group commit.
func (c *Catalog) queued() int {
	c.group.mu.Lock()
	defer c.group.mu.Unlock()
	return len(c.group.queue)
}

// TestPublishGroupCommit publishes eight paths at once while the writing
// connection is busy: they are committed as one batch, each with its own
// outcome. The two whose reference is missing fail alone, and a path
// referencing one published earlier in the same batch is accepted.
func TestPublishGroupCommit(t *testing.T) {
	ctx := context.Background()
	c := openT(t, filepath.Join(t.TempDir(), "cached.db"))
	now := time.Now()
	paths := make([]catalog.Path, 8)
	for i := range paths {
		n := testNAR(i+1, now)
		if err := c.PutNAR(ctx, n); err != nil {
			t.Fatal(err)
		}
		paths[i] = testPath(i+1, n)
	}
	paths[3].References = []string{testPath(99, testNAR(99, now)).HashPart} // never published
	paths[6].References = []string{testPath(98, testNAR(98, now)).HashPart} // never published
	paths[5].References = []string{paths[0].HashPart}                       // published in the batch

	// Hold the writing connection, so that every Publish queues.
	hold, release := make(chan struct{}), make(chan struct{})
	go c.write(ctx, func(*sql.Tx) error { //nolint:errcheck // holds the connection only
		close(hold)
		<-release
		return nil
	})
	<-hold
	before := c.group.batches
	errs := make([]error, len(paths))
	var wg sync.WaitGroup
	// The first queues alone, so that it is first in the batch.
	wg.Go(func() { errs[0] = c.Publish(ctx, paths[0], catalog.PublishOptions{}) })
	waitQueued(t, c, 1)
	for i := 1; i < len(paths); i++ {
		wg.Go(func() { errs[i] = c.Publish(ctx, paths[i], catalog.PublishOptions{}) })
	}
	waitQueued(t, c, len(paths))
	close(release)
	wg.Wait()

	if got := c.group.batches - before; got != 1 {
		t.Errorf("%d paths published in %d batches, want 1", len(paths), got)
	}
	for i, p := range paths {
		_, err := c.Path(ctx, p.HashPart)
		switch i {
		case 3, 6:
			if !errors.Is(errs[i], catalog.ErrMissingReferences) {
				t.Errorf("path %d: Publish = %v, want ErrMissingReferences", i, errs[i])
			}
			if !errors.Is(err, catalog.ErrNotFound) {
				t.Errorf("path %d: failed Publish left it published (Path: %v)", i, err)
			}
		default:
			if errs[i] != nil || err != nil {
				t.Errorf("path %d: Publish = %v, Path = %v; want both nil", i, errs[i], err)
			}
		}
	}
}

// TestGroupCommitHandsOver runs many publishers at once, round after
// round: every Publish returns with its path published, whichever caller
// led the batch it was in.
func TestGroupCommitHandsOver(t *testing.T) {
	ctx := context.Background()
	c := openT(t, filepath.Join(t.TempDir(), "cached.db"))
	now := time.Now()
	const n = 64
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			nar := testNAR(i+1, now)
			if errs[i] = c.PutNAR(ctx, nar); errs[i] == nil {
				errs[i] = c.Publish(ctx, testPath(i+1, nar), catalog.PublishOptions{})
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("publisher %d: %v", i, err)
		}
		if _, err := c.Path(ctx, testPath(i+1, testNAR(i+1, now)).HashPart); err != nil {
			t.Errorf("path %d: %v", i, err)
		}
	}
	c.group.mu.Lock()
	leading, queued := c.group.leading, len(c.group.queue)
	c.group.mu.Unlock()
	if leading || queued != 0 {
		t.Errorf("after the last batch: leading %v, %d queued", leading, queued)
	}
}

// waitQueued waits until n writes are queued.
func waitQueued(t *testing.T, c *Catalog, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for c.queued() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d writes queued after 10s, want %d", c.queued(), n)
		}
		time.Sleep(time.Millisecond)
	}
}
