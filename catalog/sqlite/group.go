package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// groupCommit lets durable writes that arrive together share one
// transaction, and so one fsync of the WAL (group commit). Parallel
// pushes (Nix 2.34 uploads over many connections) publish their paths
// at the same moment; one after the other, each would wait for the disk
// in turn.
//
// There is no background goroutine: the first caller to find no batch
// running leads. It takes the writing connection, then every write
// queued by then, runs each under its own savepoint, commits once and
// hands the lead to the oldest write queued meanwhile. A write that fails
// is rolled back to its savepoint and fails alone; a failed commit fails
// the whole batch.
type groupCommit struct {
	mu      sync.Mutex
	queue   []*groupOp
	leading bool
	batches int // batches committed or failed, for tests
}

// groupOp is one queued write.
type groupOp struct {
	fn   func(*sql.Tx) error
	done chan groupResult // buffered: the leader never blocks on it
}

// groupResult ends a write's wait: its outcome, or the lead.
type groupResult struct {
	err  error
	lead bool
}

// writeGrouped runs fn in a durable write transaction, possibly shared
// with other writeGrouped calls, and returns once that transaction has
// committed (or fn failed). fn must use its own context for its queries
// and must not depend on running alone: other writes of the batch come
// before it in the same transaction, and their effects are visible to it.
func (c *Catalog) writeGrouped(ctx context.Context, fn func(*sql.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	op := &groupOp{fn: fn, done: make(chan groupResult, 1)}
	g := &c.group
	g.mu.Lock()
	g.queue = append(g.queue, op)
	lead := !g.leading
	g.leading = true
	g.mu.Unlock()
	if !lead {
		r := <-op.done
		if !r.lead {
			return r.err
		}
	}
	// Whoever leads was queued before the batch it runs took the queue,
	// so the batch holds its own write.
	c.runBatch()
	return (<-op.done).err
}

// runBatch commits the writes queued once the connection is taken, then
// passes the lead to the oldest write still queued, if any.
func (c *Catalog) runBatch() {
	g := &c.group
	// The batch runs to its end whoever asked for it: each write's own
	// context governs its queries, not the connection or the commit.
	ctx := context.Background()
	tx, beginErr := c.writer.BeginTx(ctx, nil)
	g.mu.Lock()
	batch := g.queue
	g.queue = nil
	g.mu.Unlock()
	if beginErr != nil {
		finish(batch, beginErr)
	} else {
		c.commitBatch(ctx, tx, batch)
	}
	g.mu.Lock()
	g.batches++
	if len(g.queue) == 0 {
		g.leading = false
		g.mu.Unlock()
		return
	}
	next := g.queue[0]
	g.mu.Unlock()
	next.done <- groupResult{lead: true}
}

// commitBatch runs batch's writes in tx, each under a savepoint, and
// commits, telling each write its outcome.
func (c *Catalog) commitBatch(ctx context.Context, tx *sql.Tx, batch []*groupOp) {
	if len(batch) == 1 {
		// Alone: no savepoint needed.
		err := batch[0].fn(tx)
		if err != nil {
			tx.Rollback() //nolint:errcheck // fn's error is the one that matters
		} else {
			err = tx.Commit()
		}
		batch[0].done <- groupResult{err: err}
		return
	}
	errs := make([]error, len(batch))
	for i, op := range batch {
		if _, err := tx.ExecContext(ctx, `SAVEPOINT grouped`); err != nil {
			tx.Rollback() //nolint:errcheck // the savepoint's error is the one that matters
			finish(batch, err)
			return
		}
		errs[i] = op.fn(tx)
		if errs[i] != nil {
			if _, err := tx.ExecContext(ctx, `ROLLBACK TO grouped`); err != nil {
				tx.Rollback() //nolint:errcheck // the rollback's error is the one that matters
				finish(batch, fmt.Errorf("undoing a failed write: %w", err))
				return
			}
		}
		if _, err := tx.ExecContext(ctx, `RELEASE grouped`); err != nil {
			tx.Rollback() //nolint:errcheck // the release's error is the one that matters
			finish(batch, err)
			return
		}
	}
	if err := tx.Commit(); err != nil {
		finish(batch, err)
		return
	}
	for i, op := range batch {
		op.done <- groupResult{err: errs[i]}
	}
}

// finish fails every write of batch with err.
func finish(batch []*groupOp, err error) {
	for _, op := range batch {
		op.done <- groupResult{err: err}
	}
}
