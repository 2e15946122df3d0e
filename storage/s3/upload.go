package s3

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/nix-cached/cached/storage"
)

// cleanupTimeout bounds the calls that discard an upload, which run after
// the caller's context may have ended.
const cleanupTimeout = time.Minute

// Create starts an upload. Writes and Commit fail, and whatever the upload
// put in the bucket is removed, once ctx is done.
func (s *Store) Create(ctx context.Context) (storage.Upload, error) {
	return s.create(ctx, "")
}

// CreateFor starts an upload that Commit must put under key: a large one
// goes to key as a multipart upload, which S3 makes visible, whole, only
// when Commit completes it, so no copy is needed (storage.KeyedCreator).
func (s *Store) CreateFor(ctx context.Context, key string) (storage.Upload, error) {
	obj, err := s.check(ctx, "create", key)
	if err != nil {
		return nil, err
	}
	return s.create(ctx, obj)
}

func (s *Store) create(ctx context.Context, target string) (storage.Upload, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("s3: create: %w", err)
	}
	u := &upload{s: s, ctx: ctx, part: 1, target: target}
	u.cond = sync.NewCond(&u.pmu)
	u.partCtx, u.cancelParts = context.WithCancel(ctx)
	u.stopWatch = context.AfterFunc(ctx, func() {
		u.mu.Lock()
		defer u.mu.Unlock()
		u.discard() //nolint:errcheck // best effort; the janitor sweeps what remains
	})
	return u, nil
}

// upload is an object being written: in memory up to the first part size,
// then as a multipart upload to a temporary object.
type upload struct {
	s           *Store
	ctx         context.Context // the upload's lifetime, from Create
	stopWatch   func() bool     // cancels the discard that ctx's end runs
	partCtx     context.Context // part uploads; cancelled on failure
	cancelParts context.CancelFunc

	mu        sync.Mutex // serialises Write, Commit, Abort and discard
	done      bool       // committed, aborted or failed
	fill      [][]byte   // the part being filled: full chunks, the last maybe not
	fillLen   int64
	size      int64          // bytes written in all
	part      int            // number of the part being filled, from 1
	target    string         // the object key Commit must use, if given at Create
	tmp       string         // the temporary object, when there is no target
	mpKey     string         // the object key of the multipart upload: target or tmp
	uploadID  string         // of the multipart upload to mpKey, until completed
	completed bool           // tmp may exist as an object
	inflight  sync.WaitGroup // part senders

	pmu     sync.Mutex // guards what part senders share with the writer
	cond    *sync.Cond // on pmu: a part finished
	free    [][]byte   // chunks to reuse
	held    int64      // capacity of every chunk allocated and not released
	sending int        // parts in flight
	parts   []types.CompletedPart
	partErr error
}

// Write appends p to the upload, sending each part as it fills. It blocks
// while the upload holds its bound of bytes in memory.
func (u *upload) Write(p []byte) (int, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.done {
		return 0, ErrUploadClosed
	}
	if err := u.ctx.Err(); err != nil {
		return 0, u.fail(fmt.Errorf("s3: write: %w", err))
	}
	written := 0
	for len(p) > 0 {
		limit := partSize(u.s.cfg.PartSize, u.part, u.s.cfg.UniformParts)
		if u.fillLen == limit {
			if u.part >= maxParts {
				return written, u.fail(fmt.Errorf("%w: over %d parts (%d bytes)", ErrTooLarge, maxParts, u.size))
			}
			if err := u.flush(); err != nil {
				return written, u.fail(err)
			}
			continue
		}
		if n := len(u.fill); n == 0 || len(u.fill[n-1]) == cap(u.fill[n-1]) {
			c, err := u.chunk(limit)
			if err != nil {
				return written, u.fail(fmt.Errorf("s3: write: %w", err))
			}
			u.fill = append(u.fill, c)
		}
		last := &u.fill[len(u.fill)-1]
		room := min(int64(cap(*last)-len(*last)), limit-u.fillLen, int64(len(p)))
		k := copy((*last)[len(*last):cap(*last)], p[:room])
		*last = (*last)[:len(*last)+k]
		p = p[k:]
		written += k
		u.fillLen += int64(k)
		u.size += int64(k)
	}
	return written, nil
}

// chunk returns an empty chunk for the part being filled, whose size is
// limit: a free one, a new one within the upload's memory bound, or, once
// the bound is reached, the first one a finished part frees.
func (u *upload) chunk(limit int64) ([]byte, error) {
	var capacity int64
	for _, c := range u.fill {
		if capacity += int64(cap(c)); capacity >= maxChunk {
			break
		}
	}
	size := min(max(capacity, minChunk), maxChunk)
	bound := max(u.s.cfg.MaxBuffer, limit+maxChunk)
	u.pmu.Lock()
	defer u.pmu.Unlock()
	for {
		if n := len(u.free); n > 0 {
			c := u.free[n-1]
			u.free = u.free[:n-1]
			return c[:0], nil
		}
		if u.partErr != nil {
			return nil, u.partErr
		}
		if err := u.ctx.Err(); err != nil {
			return nil, err
		}
		if u.held+size <= bound || u.sending == 0 {
			u.held += size
			return u.s.newChunk(size), nil
		}
		u.cond.Wait()
	}
}

// flush sends the part being filled, starting the multipart upload first
// if needed.
func (u *upload) flush() error {
	if u.uploadID == "" {
		u.mpKey = u.target
		if u.target == "" {
			u.tmp = u.s.uploadsPrefix() + rand.Text()
			u.s.setLive(u.tmp, true)
			u.mpKey = u.tmp
		}
		out, err := u.s.client.CreateMultipartUpload(u.ctx, &awss3.CreateMultipartUploadInput{
			Bucket: aws.String(u.s.cfg.Bucket),
			Key:    aws.String(u.mpKey),
		})
		if err != nil {
			return fmt.Errorf("s3: starting a multipart upload: %w", err)
		}
		u.uploadID = aws.ToString(out.UploadId)
		u.s.setLive(u.uploadID, true)
	}
	chunks, n, num := u.fill, u.fillLen, u.part
	u.fill, u.fillLen = nil, 0
	u.part++
	u.pmu.Lock()
	u.sending++
	u.pmu.Unlock()
	u.inflight.Add(1)
	go u.send(u.mpKey, u.uploadID, num, chunks, n)
	return nil
}

// send uploads part num, then frees its chunks for reuse.
func (u *upload) send(key, id string, num int, chunks [][]byte, n int64) {
	defer u.inflight.Done()
	b := newBody(chunks, n)
	out, err := u.s.client.UploadPart(u.partCtx, &awss3.UploadPartInput{
		Bucket:        aws.String(u.s.cfg.Bucket),
		Key:           aws.String(key),
		UploadId:      aws.String(id),
		PartNumber:    aws.Int32(int32(num)),
		ContentLength: aws.Int64(n),
		Body:          b,
	})
	b.detach()
	u.pmu.Lock()
	defer u.pmu.Unlock()
	u.sending--
	if err != nil {
		if u.partErr == nil {
			u.partErr = fmt.Errorf("s3: uploading part %d: %w", num, err)
		}
		u.cancelParts()
	} else {
		u.parts = append(u.parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(int32(num))})
	}
	for _, c := range chunks {
		u.free = append(u.free, c[:0])
	}
	u.cond.Broadcast()
}

// Commit makes the bytes written visible under key: with one PutObject if
// they fit in the first part, otherwise by completing the multipart upload,
// which for an upload made by Create goes to a temporary object that is
// then copied to key server-side. Any failure discards the upload and
// leaves the old object, if any, in place.
func (u *upload) Commit(ctx context.Context, key string) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.done {
		return fmt.Errorf("s3: commit %s: %w", key, ErrUploadClosed)
	}
	obj, err := u.s.objectKey(key)
	if err != nil {
		return u.fail(fmt.Errorf("s3: commit: %w", err))
	}
	if u.target != "" && obj != u.target {
		return u.fail(fmt.Errorf("s3: commit %s: %w: the upload was created for another key", key, storage.ErrInvalidKey))
	}
	if err := live(ctx, u.ctx); err != nil {
		return u.fail(fmt.Errorf("s3: commit %s: %w", key, err))
	}
	cctx, stop := bothContexts(ctx, u.ctx)
	defer stop()
	if u.uploadID == "" {
		b := newBody(u.fill, u.fillLen)
		_, err := u.s.client.PutObject(cctx, &awss3.PutObjectInput{
			Bucket:        aws.String(u.s.cfg.Bucket),
			Key:           aws.String(obj),
			ContentLength: aws.Int64(u.fillLen),
			Body:          b,
		})
		b.detach()
		if err != nil {
			return u.fail(fmt.Errorf("s3: commit %s: %w", key, err))
		}
		u.finish()
		return nil
	}
	if err := u.flush(); err != nil {
		return u.fail(fmt.Errorf("s3: commit %s: %w", key, err))
	}
	stopParts := context.AfterFunc(cctx, u.cancelParts) // Commit's ctx ends the wait too
	u.inflight.Wait()
	stopParts()
	u.pmu.Lock()
	parts, err := u.parts, u.partErr
	u.pmu.Unlock()
	if err != nil {
		return u.fail(fmt.Errorf("s3: commit %s: %w", key, err))
	}
	slices.SortFunc(parts, func(a, b types.CompletedPart) int {
		return int(aws.ToInt32(a.PartNumber) - aws.ToInt32(b.PartNumber))
	})
	u.completed = true
	_, err = u.s.client.CompleteMultipartUpload(cctx, &awss3.CompleteMultipartUploadInput{
		Bucket:          aws.String(u.s.cfg.Bucket),
		Key:             aws.String(u.mpKey),
		UploadId:        aws.String(u.uploadID),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	}, u.s.slow)
	if err != nil {
		return u.fail(fmt.Errorf("s3: commit %s: completing the multipart upload: %w", key, err))
	}
	u.s.setLive(u.uploadID, false)
	u.uploadID = ""
	if u.target != "" {
		u.finish() // completing it put the object in place
		return nil
	}
	if err := u.s.copyObject(cctx, u.tmp, obj, u.size); err != nil {
		return u.fail(fmt.Errorf("s3: commit %s: copying into place: %w", key, err))
	}
	u.finish()
	return nil
}

// Abort discards the upload; it is a no-op once the upload has ended.
func (u *upload) Abort() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := u.discard(); err != nil {
		return fmt.Errorf("s3: abort: %w", err)
	}
	return nil
}

// fail discards the upload and returns err, noting any failure to clean
// up. u.mu must be held.
func (u *upload) fail(err error) error {
	if derr := u.discard(); derr != nil {
		return fmt.Errorf("%w (and cleaning up: %v)", err, derr)
	}
	return err
}

// discard ends the upload, waits for the parts in flight, aborts the
// multipart upload and deletes the temporary object. It is a no-op once the
// upload has ended. u.mu must be held.
func (u *upload) discard() error {
	if u.done {
		return nil
	}
	u.end()
	if u.mpKey == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(u.ctx), cleanupTimeout)
	defer cancel()
	var errs []error
	if u.uploadID != "" {
		_, err := u.s.client.AbortMultipartUpload(ctx, &awss3.AbortMultipartUploadInput{
			Bucket:   aws.String(u.s.cfg.Bucket),
			Key:      aws.String(u.mpKey),
			UploadId: aws.String(u.uploadID),
		})
		if err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("aborting the multipart upload: %w", err))
		}
		u.s.setLive(u.uploadID, false)
	}
	if u.tmp == "" {
		return errors.Join(errs...)
	}
	if u.completed {
		if err := u.s.deleteObject(ctx, u.tmp); err != nil {
			errs = append(errs, fmt.Errorf("deleting the temporary object: %w", err))
		}
	}
	u.s.setLive(u.tmp, false) // what remains is the janitor's
	return errors.Join(errs...)
}

// finish ends a committed upload and deletes its temporary object, if any.
// A failure to delete it leaves it to the janitor. u.mu must be held.
func (u *upload) finish() {
	u.end()
	if u.tmp == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(u.ctx), cleanupTimeout)
	defer cancel()
	u.s.deleteObject(ctx, u.tmp) //nolint:errcheck // the janitor removes it later
	u.s.setLive(u.tmp, false)
}

// end marks the upload ended, stops its part senders and releases its
// chunks. u.mu must be held.
func (u *upload) end() {
	u.done = true
	u.stopWatch()
	u.cancelParts()
	u.inflight.Wait()
	u.pmu.Lock()
	for _, c := range append(u.free, u.fill...) {
		u.s.recycleChunk(c)
	}
	u.fill, u.free, u.held = nil, nil, 0
	u.pmu.Unlock()
}

// live returns the error of the first of ctxs that is done.
func live(ctxs ...context.Context) error {
	for _, c := range ctxs {
		if err := c.Err(); err != nil {
			return err
		}
	}
	return nil
}

// bothContexts returns a context that ends when either a or b does.
func bothContexts(a, b context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(a)
	stop := context.AfterFunc(b, func() { cancel(context.Cause(b)) })
	return ctx, func() {
		stop()
		cancel(nil)
	}
}
