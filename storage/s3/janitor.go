package s3

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
)

// janitorSchedule says when the janitor runs and what it counts as stale.
type janitorSchedule struct {
	delay      time.Duration // before the first sweep
	every      time.Duration // between sweeps
	staleAfter time.Duration // age of a leftover the janitor removes
}

// defaultJanitor sweeps half a minute after New, then hourly, removing what
// is more than an hour old.
var defaultJanitor = janitorSchedule{delay: 30 * time.Second, every: time.Hour, staleAfter: time.Hour}

// runJanitor sweeps on schedule j until ctx ends. Sweep errors are logged:
// the next sweep tries again.
func (s *Store) runJanitor(ctx context.Context, j janitorSchedule) {
	defer close(s.janitorDone)
	t := time.NewTimer(j.delay)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.sweep(ctx, time.Now().Add(-j.staleAfter)); err != nil && ctx.Err() == nil {
			slog.Warn("s3: removing stale uploads", "bucket", s.cfg.Bucket, "err", err)
		}
		t.Reset(j.every)
	}
}

// sweep aborts the multipart uploads under the store's prefix that were
// started before cutoff and have received no part since, and deletes the
// temporary objects last modified before cutoff: what a crash left. It
// spares the uploads of this process, however old.
func (s *Store) sweep(ctx context.Context, cutoff time.Time) error {
	return errors.Join(s.sweepUploads(ctx, cutoff), s.sweepObjects(ctx, cutoff))
}

// sweepUploads aborts stale multipart uploads. It lists the whole bucket's
// and picks those under the prefix itself: MinIO takes a listing prefix for
// an exact object name.
func (s *Store) sweepUploads(ctx context.Context, cutoff time.Time) error {
	var errs []error
	p := awss3.NewListMultipartUploadsPaginator(s.client, &awss3.ListMultipartUploadsInput{
		Bucket: aws.String(s.cfg.Bucket),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return errors.Join(append(errs, fmt.Errorf("listing multipart uploads: %w", err))...)
		}
		for _, up := range page.Uploads {
			key, id := aws.ToString(up.Key), aws.ToString(up.UploadId)
			if !strings.HasPrefix(key, s.prefix) || s.isLive(id) || s.isLive(key) || up.Initiated == nil || !up.Initiated.Before(cutoff) {
				continue
			}
			active, err := s.recentPart(ctx, key, id, cutoff)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if active {
				continue
			}
			_, err = s.client.AbortMultipartUpload(ctx, &awss3.AbortMultipartUploadInput{
				Bucket:   aws.String(s.cfg.Bucket),
				Key:      aws.String(key),
				UploadId: aws.String(id),
			})
			if err != nil && !isNotFound(err) {
				errs = append(errs, fmt.Errorf("aborting the multipart upload to %s: %w", key, err))
			}
		}
	}
	return errors.Join(errs...)
}

// recentPart reports whether the multipart upload id to key received a
// part after cutoff: a long upload still going on elsewhere.
func (s *Store) recentPart(ctx context.Context, key, id string, cutoff time.Time) (bool, error) {
	p := awss3.NewListPartsPaginator(s.client, &awss3.ListPartsInput{
		Bucket:   aws.String(s.cfg.Bucket),
		Key:      aws.String(key),
		UploadId: aws.String(id),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if isNotFound(err) {
			return true, nil // gone already: nothing to abort
		}
		if err != nil {
			return false, fmt.Errorf("listing the parts of the upload to %s: %w", key, err)
		}
		for _, part := range page.Parts {
			if part.LastModified != nil && !part.LastModified.Before(cutoff) {
				return true, nil
			}
		}
	}
	return false, nil
}

// sweepObjects deletes stale temporary objects.
func (s *Store) sweepObjects(ctx context.Context, cutoff time.Time) error {
	var errs []error
	p := awss3.NewListObjectsV2Paginator(s.client, &awss3.ListObjectsV2Input{
		Bucket: aws.String(s.cfg.Bucket),
		Prefix: aws.String(s.uploadsPrefix()),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return errors.Join(append(errs, fmt.Errorf("listing temporary objects: %w", err))...)
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			if s.isLive(key) || o.LastModified == nil || !o.LastModified.Before(cutoff) {
				continue
			}
			if err := s.deleteObject(ctx, key); err != nil {
				errs = append(errs, fmt.Errorf("deleting %s: %w", key, err))
			}
		}
	}
	return errors.Join(errs...)
}
