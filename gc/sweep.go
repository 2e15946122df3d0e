package gc

import (
	"context"
	"errors"
	"fmt"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/storage"
)

// sweepBatch is how many paths one catalog transaction deletes.
const sweepBatch = 256

// sweep removes the planned paths in order, a batch per transaction. A
// path the catalog refuses to delete because it became live (referenced,
// pinned, published or used since the plan) is kept; any other failure
// ends the sweep. Blobs go after the batch's transaction, and the NAR
// records they belonged to are dropped after their blobs.
func (c *Collector) sweep(ctx context.Context, ps *planState, res *Result) error {
	cond := catalog.DeleteCondition{CreatedBefore: ps.Started, UsedBefore: ps.Cutoff}
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
		var drop []string
		var blobErrs []error
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
			// The paths are gone from the catalog: try every blob of the
			// batch even after a failure, since a NAR left deleting is
			// finished by the next run but nothing remembers a build log.
			if err := c.deleteLog(ctx, r.OrphanLog); err != nil {
				blobErrs = append(blobErrs, err)
			}
			if r.NAR != nil {
				n, err := c.deleteNARBlobs(ctx, *r.NAR)
				if err != nil {
					blobErrs = append(blobErrs, err)
					continue
				}
				drop = append(drop, r.NAR.Key)
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
		case 1:
			return blobErrs[0]
		default:
			return fmt.Errorf("%w (and %d more deletions failed)", blobErrs[0], len(blobErrs)-1)
		}
	}
	return nil
}

// keep records a planned path the catalog refused to delete.
func (c *Collector) keep(res *Result, d Doomed, why string) {
	res.Kept = append(res.Kept, d)
	c.opt.Logger.Info("gc: kept a path that became live during the collection", "path", d.StorePath, "why", why)
}

// dropBlobs deletes what a path deletion left to delete in storage: its
// NAR (when no path names it any more) and its build log. It tries both
// before it reports a failure: a NAR left deleting is finished by the next
// run, but nothing remembers an orphan log.
func (c *Collector) dropBlobs(ctx context.Context, del catalog.Deleted, res *Result) error {
	logErr := c.deleteLog(ctx, del.OrphanLog)
	if del.NAR != nil {
		n, err := c.deleteNAR(ctx, *del.NAR)
		if err != nil {
			return errors.Join(err, logErr)
		}
		if res != nil {
			res.NARsRemoved++
			res.BytesRemoved += n
		}
	}
	return logErr
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
