package ingest

import (
	"context"
	"errors"
	"fmt"

	"github.com/nix-cached/cached/storage"
)

// SweepResult counts what a sweep removed.
type SweepResult struct {
	NARs  int // unclaimed NAR records (and their blobs) removed
	Blobs int // orphan blobs with no record removed
	Bytes int64
}

// SweepUnclaimed removes NARs that no narinfo claimed within the upload
// lease, and blobs under nar/ and ls/ that no NAR record names and that are
// older than the lease (left by a crash between storing a blob and
// recording it). Records go before blobs, so a record never outlives its
// blob; any doubt about whether a blob is in use keeps it.
func (in *Ingester) SweepUnclaimed(ctx context.Context) (SweepResult, error) {
	var res SweepResult
	before := in.opt.Now().Add(-in.opt.UploadLease)
	nars, err := in.cat.UnclaimedNARs(ctx, before)
	if err != nil {
		return res, fmt.Errorf("ingest: listing unclaimed NARs: %w", err)
	}
	for _, n := range nars {
		unlock := in.lock(n.Key)
		removed, err := in.cat.DeleteUnclaimedNAR(ctx, n.Key, before)
		if err == nil && removed {
			err = in.store.Delete(ctx, n.Key)
		}
		unlock()
		if err != nil {
			return res, fmt.Errorf("ingest: removing unclaimed NAR %s: %w", n.Key, err)
		}
		if !removed {
			continue
		}
		res.NARs++
		res.Bytes += n.FileSize
		if n.ListingKey != "" {
			if _, err := in.removeOrphan(ctx, n.ListingKey, false); err != nil {
				return res, err
			}
		}
	}
	for _, prefix := range []string{"nar/", "ls/"} {
		var old []storage.Info
		err := in.store.List(ctx, prefix, func(i storage.Info) error {
			if i.ModTime.Before(before) {
				old = append(old, i)
			}
			return nil
		})
		if err != nil {
			return res, fmt.Errorf("ingest: listing %s: %w", prefix, err)
		}
		for _, i := range old {
			removed, err := in.removeOrphan(ctx, i.Key, true)
			if err != nil {
				return res, err
			}
			if removed {
				res.Blobs++
				res.Bytes += i.Size
			}
		}
	}
	return res, nil
}

// removeOrphan deletes the blob at key if no NAR record names it (and, when
// checkAge is set, if it is still older than the lease: it may have been
// re-uploaded since it was listed).
func (in *Ingester) removeOrphan(ctx context.Context, key string, checkAge bool) (bool, error) {
	unlock := in.lock(key)
	defer unlock()
	used, err := in.cat.BlobInUse(ctx, key)
	if err != nil {
		return false, fmt.Errorf("ingest: checking whether %s is in use: %w", key, err)
	}
	if used {
		return false, nil
	}
	if checkAge {
		info, err := in.store.Stat(ctx, key)
		if errors.Is(err, storage.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("ingest: checking %s: %w", key, err)
		}
		if !info.ModTime.Before(in.opt.Now().Add(-in.opt.UploadLease)) {
			return false, nil
		}
	}
	if err := in.store.Delete(ctx, key); err != nil {
		return false, fmt.Errorf("ingest: removing orphan %s: %w", key, err)
	}
	return true, nil
}
