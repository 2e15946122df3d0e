package gc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/storage"
)

// sweepBatch is how many paths one catalog transaction deletes.
const sweepBatch = 1024

// sweep removes the planned paths in order, a batch per transaction. A
// path the catalog refuses to delete because it became live (referenced,
// pinned, published or used since the plan) is kept; any other failure
// ends the sweep. A batch's blobs go BlobGrace after its transaction (the
// next batches are deleted meanwhile), and the NAR records they belonged
// to are dropped after their blobs.
func (c *Collector) sweep(ctx context.Context, ps *planState, res *Result) error {
	cond := catalog.DeleteCondition{CreatedBefore: ps.Started, UsedBefore: ps.usedBefore}
	// A failure leaves the NARs of unburied batches deleting, for the
	// next run to finish.
	var buried []burial
	for start := 0; start < len(ps.Remove); start += sweepBatch {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("gc: sweeping: %w", context.Cause(ctx))
		}
		batch := ps.Remove[start:min(start+sweepBatch, len(ps.Remove))]
		hashes := make([]string, len(batch))
		for i, d := range batch {
			hashes[i] = d.HashPart
		}
		results, err := c.cat.DeletePaths(ctx, hashes, cond)
		if err != nil {
			return fmt.Errorf("gc: removing paths: %w", err)
		}
		b := burial{due: time.Now().Add(c.grace())}
		for i, r := range results {
			d := batch[i]
			switch {
			case errors.Is(r.Err, catalog.ErrReferenced), errors.Is(r.Err, catalog.ErrPinned), errors.Is(r.Err, catalog.ErrKept):
				c.keep(res, d, r.Err.Error())
				continue
			case errors.Is(r.Err, catalog.ErrNotFound):
				continue // removed by someone else meanwhile
			case r.Err != nil:
				return fmt.Errorf("gc: removing %s: %w", d.StorePath, r.Err)
			}
			res.Removed++
			c.opt.Logger.Debug("gc: removed", "path", d.StorePath, "reason", d.Reason)
			b.dels = append(b.dels, r.Deleted)
		}
		buried = append(buried, b)
		for len(buried) > 0 && !time.Now().Before(buried[0].due) {
			if err := c.bury(ctx, buried[0], res); err != nil {
				return err
			}
			buried = buried[1:]
		}
	}
	for len(buried) > 0 {
		if err := sleepUntil(ctx, buried[0].due); err != nil {
			return fmt.Errorf("gc: waiting to delete blobs: %w", err)
		}
		if err := c.bury(ctx, buried[0], res); err != nil {
			return err
		}
		buried = buried[1:]
	}
	return nil
}

// burial is what one transaction's path deletions left to delete in
// storage, and when that may happen.
type burial struct {
	due  time.Time
	dels []catalog.Deleted
}

// grace is how long blobs outlive the deletion of their paths: longer
// than any process serves a narinfo from memory (catalog.BlobGrace).
func (c *Collector) grace() time.Duration {
	switch {
	case c.opt.BlobGrace < 0:
		return 0
	case c.opt.BlobGrace == 0:
		return catalog.BlobGrace
	}
	return c.opt.BlobGrace
}

// sleepUntil waits until t or the end of ctx.
func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// bury deletes the blobs a burial holds: every blob even after a failure,
// since a NAR left deleting is finished by the next run but nothing
// remembers a build log. The NAR records go after their blobs.
func (c *Collector) bury(ctx context.Context, b burial, res *Result) error {
	var drop []string
	var blobErrs []error
	for _, del := range b.dels {
		if err := c.deleteLog(ctx, del.OrphanLog); err != nil {
			blobErrs = append(blobErrs, err)
		}
		if del.NAR != nil {
			n, err := c.deleteNARBlobs(ctx, *del.NAR)
			if err != nil {
				blobErrs = append(blobErrs, err)
				continue
			}
			drop = append(drop, del.NAR.Key)
			res.NARsRemoved++
			res.BytesRemoved += n
		}
	}
	if len(drop) > 0 {
		if err := c.cat.DropNARs(ctx, drop); err != nil {
			return fmt.Errorf("gc: dropping %d NAR records: %w", len(drop), err)
		}
	}
	switch len(blobErrs) {
	case 0:
		return nil
	case 1:
		return blobErrs[0]
	}
	return fmt.Errorf("%w (and %d more deletions failed)", blobErrs[0], len(blobErrs)-1)
}

// keep records a planned path the catalog refused to delete.
func (c *Collector) keep(res *Result, d Doomed, why string) {
	res.Kept = append(res.Kept, d)
	c.opt.Logger.Info("gc: kept a path that became live during the collection", "path", d.StorePath, "why", why)
}

// deleteLog deletes the build log of a derivation no path claims any more.
func (c *Collector) deleteLog(ctx context.Context, deriver string) error {
	if deriver == "" {
		return nil
	}
	key := "log/" + deriver
	if err := c.store.Delete(ctx, key); err != nil && !errors.Is(err, storage.ErrInvalidKey) {
		return fmt.Errorf("gc: deleting the build log %s: %w", key, err)
	}
	return nil
}

// deleteNAR deletes the blobs of a NAR record marked deleting, then drops
// the record; it returns the bytes deleted.
func (c *Collector) deleteNAR(ctx context.Context, n catalog.NAR) (int64, error) {
	size, err := c.deleteNARBlobs(ctx, n)
	if err != nil {
		return size, err
	}
	if err := c.cat.DropNAR(ctx, n.Key); err != nil {
		return size, fmt.Errorf("gc: dropping the record of %s: %w", n.Key, err)
	}
	return size, nil
}

// deleteNARBlobs deletes the blobs of a NAR record marked deleting and
// returns their bytes; the caller drops the record after. The listing goes
// only if no other record names it (listings are named by NarHash, so NARs
// of the same contents share one). A failure leaves the record deleting,
// for the next run to finish.
func (c *Collector) deleteNARBlobs(ctx context.Context, n catalog.NAR) (int64, error) {
	size := n.FileSize
	if size == 0 {
		// A placeholder or a crashed upload: the record does not know.
		info, err := c.store.Stat(ctx, n.Key)
		switch {
		case errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrInvalidKey):
		case err != nil:
			return 0, fmt.Errorf("gc: deleting %s: %w", n.Key, err)
		default:
			size = info.Size
		}
	}
	if c.beforeNARDelete != nil {
		c.beforeNARDelete(n.Key)
	}
	if err := c.store.Delete(ctx, n.Key); err != nil && !errors.Is(err, storage.ErrInvalidKey) {
		return 0, fmt.Errorf("gc: deleting %s: %w", n.Key, err)
	}
	if n.ListingKey != "" {
		used, err := c.cat.BlobInUse(ctx, n.ListingKey)
		if err != nil {
			return size, fmt.Errorf("gc: checking whether listing %s is in use: %w", n.ListingKey, err)
		}
		if !used {
			info, err := c.store.Stat(ctx, n.ListingKey)
			switch {
			case errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrInvalidKey):
			case err != nil:
				return size, fmt.Errorf("gc: deleting listing %s: %w", n.ListingKey, err)
			default:
				if err := c.store.Delete(ctx, n.ListingKey); err != nil {
					return size, fmt.Errorf("gc: deleting listing %s: %w", n.ListingKey, err)
				}
				size += info.Size
			}
		}
	}
	return size, nil
}

// finishDeleting deletes the blobs of NAR records left deleting by a run
// that failed or crashed, and drops the records.
func (c *Collector) finishDeleting(ctx context.Context, res *Result) error {
	nars, err := c.cat.DeletingNARs(ctx)
	if err != nil {
		return fmt.Errorf("gc: listing NARs being deleted: %w", err)
	}
	if len(nars) > 0 {
		// Their paths may have been deleted just before a crash.
		if err := sleepUntil(ctx, time.Now().Add(c.grace())); err != nil {
			return fmt.Errorf("gc: waiting to delete blobs: %w", err)
		}
	}
	for _, n := range nars {
		size, err := c.deleteNAR(ctx, n)
		if err != nil {
			return err
		}
		res.NARsRemoved++
		res.BytesRemoved += size
		c.opt.Logger.Info("gc: finished deleting a NAR an earlier run left", "key", n.Key, "bytes", size)
	}
	return nil
}
