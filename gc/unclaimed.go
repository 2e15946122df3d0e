package gc

import (
	"context"
	"fmt"

	"github.com/nix-cached/cached/storage"
)

// SweepResult counts what SweepUnclaimed removed.
type SweepResult struct {
	NARs  int   // unclaimed NAR records removed with their blobs
	Blobs int   // orphan blobs (named by no record) removed
	Bytes int64 // bytes deleted from storage
}

// blobPrefixes are where NARs and their listings are stored.
var blobPrefixes = []string{"nar/", "ls/"}

// SweepUnclaimed removes uploads that no narinfo claimed within the upload
// lease (and crashed uploads as old), and blobs under nar/ and ls/ older
// than the lease that no NAR record names. It holds the collector's lock,
// so it never overlaps a collection. Each blob is marked deleting in the
// catalog before it is deleted, so an upload of the same key waits (ErrBusy)
// instead of being deleted under its feet.
func (c *Collector) SweepUnclaimed(ctx context.Context) (SweepResult, error) {
	var res SweepResult
	err := c.locked(ctx, func(ctx context.Context) error {
		before := c.now().Add(-c.opt.UploadLease)
		nars, err := c.cat.UnclaimedNARs(ctx, before)
		if err != nil {
			return fmt.Errorf("gc: listing unclaimed NARs: %w", err)
		}
		for _, n := range nars {
			rec, ok, err := c.cat.MarkNARDeleting(ctx, n.Key, before)
			if err != nil {
				return fmt.Errorf("gc: marking unclaimed NAR %s deleting: %w", n.Key, err)
			}
			if !ok {
				continue // claimed, renewed or being written since it was listed
			}
			size, err := c.deleteNAR(ctx, rec)
			if err != nil {
				return err
			}
			res.NARs++
			res.Bytes += size
		}
		for _, prefix := range blobPrefixes {
			if err := c.sweepOrphans(ctx, prefix, &res); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil && res.NARs+res.Blobs > 0 {
		c.opt.Logger.Info("gc: swept unclaimed uploads", "nars", res.NARs, "orphan_blobs", res.Blobs, "bytes", res.Bytes)
	}
	return res, err
}

// sweepOrphans removes the blobs under prefix older than the upload lease
// that no NAR record names.
func (c *Collector) sweepOrphans(ctx context.Context, prefix string, res *SweepResult) error {
	before := c.now().Add(-c.opt.UploadLease)
	var old []storage.Info
	err := c.store.List(ctx, prefix, func(i storage.Info) error {
		if i.ModTime.Before(before) {
			old = append(old, i)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("gc: listing %s: %w", prefix, err)
	}
	for _, i := range old {
		// A read first: nearly every blob is in use, and marking is a write.
		used, err := c.cat.BlobInUse(ctx, i.Key)
		if err != nil {
			return fmt.Errorf("gc: checking whether %s is in use: %w", i.Key, err)
		}
		if used {
			continue
		}
		rec, ok, err := c.cat.MarkNARDeleting(ctx, i.Key, before)
		if err != nil {
			return fmt.Errorf("gc: marking orphan %s deleting: %w", i.Key, err)
		}
		if !ok {
			continue
		}
		size, err := c.deleteNAR(ctx, rec)
		if err != nil {
			return err
		}
		res.Blobs++
		res.Bytes += size
	}
	return nil
}
