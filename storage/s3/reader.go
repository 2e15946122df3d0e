package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
)

// errReaderClosed is returned by a reader used after Close.
var errReaderClosed = errors.New("s3: read of a closed object reader")

// Open fetches the object with GetObject, so that an absent object is
// known before the caller writes anything, and returns a reader of its
// body. A Seek only moves the offset; the next Read that finds the body
// elsewhere closes it and fetches the rest with a ranged GET conditional on
// the object's ETag, failing with ErrObjectChanged if it was replaced.
func (s *Store) Open(ctx context.Context, key string) (io.ReadSeekCloser, error) {
	obj, err := s.check(ctx, "open", key)
	if err != nil {
		return nil, err
	}
	out, err := s.client.GetObject(ctx, &awss3.GetObjectInput{
		Bucket: aws.String(s.cfg.Bucket),
		Key:    aws.String(obj),
	})
	if err != nil {
		return nil, wrap("open", key, err)
	}
	if out.ContentLength == nil || *out.ContentLength < 0 {
		out.Body.Close()
		return nil, fmt.Errorf("s3: open %s: response without a Content-Length", key)
	}
	return &reader{
		s: s, ctx: ctx, key: key, obj: obj,
		etag: out.ETag, size: *out.ContentLength, body: out.Body,
	}, nil
}

// reader is an object's bytes. It keeps Open's context for the ranged GETs
// a Seek calls for: they belong to the same request.
type reader struct {
	s        *Store
	ctx      context.Context
	key, obj string
	etag     *string // of the object opened; nil if S3 sent none
	size     int64
	body     io.ReadCloser // nil when no response is open
	bodyPos  int64         // the offset body reads next
	pos      int64
	closed   bool
}

// Read implements io.Reader.
func (r *reader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, errReaderClosed
	}
	if r.pos >= r.size {
		return 0, io.EOF
	}
	if r.body != nil && r.bodyPos != r.pos {
		r.dropBody()
	}
	if r.body == nil {
		if err := r.fetch(); err != nil {
			return 0, err
		}
	}
	p = p[:min(int64(len(p)), r.size-r.pos)]
	n, err := r.body.Read(p)
	r.pos += int64(n)
	r.bodyPos += int64(n)
	switch {
	case err == io.EOF && r.pos < r.size:
		r.dropBody()
		return n, fmt.Errorf("s3: read %s: %w", r.key, io.ErrUnexpectedEOF)
	case err == io.EOF:
		r.dropBody()
		return n, nil
	case err != nil:
		r.dropBody()
		return n, fmt.Errorf("s3: read %s: %w", r.key, err)
	}
	return n, nil
}

// fetch opens a ranged GET from r.pos to the end, if the object is still
// the one opened.
func (r *reader) fetch() error {
	out, err := r.s.client.GetObject(r.ctx, &awss3.GetObjectInput{
		Bucket:  aws.String(r.s.cfg.Bucket),
		Key:     aws.String(r.obj),
		Range:   aws.String(fmt.Sprintf("bytes=%d-", r.pos)),
		IfMatch: r.etag,
	})
	switch {
	case err != nil && (httpStatus(err) == http.StatusPreconditionFailed || isNotFound(err)):
		return fmt.Errorf("s3: read %s at %d: %w", r.key, r.pos, ErrObjectChanged)
	case err != nil:
		return fmt.Errorf("s3: read %s at %d: %w", r.key, r.pos, err)
	}
	if aws.ToInt64(out.ContentLength) != r.size-r.pos {
		out.Body.Close()
		return fmt.Errorf("s3: read %s at %d: %w", r.key, r.pos, ErrObjectChanged)
	}
	r.body, r.bodyPos = out.Body, r.pos
	return nil
}

// dropBody closes the open response, if any.
func (r *reader) dropBody() {
	if r.body != nil {
		r.body.Close()
		r.body = nil
	}
}

// Seek implements io.Seeker. It sends no request.
func (r *reader) Seek(offset int64, whence int) (int64, error) {
	if r.closed {
		return 0, errReaderClosed
	}
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.pos
	case io.SeekEnd:
		offset += r.size
	default:
		return r.pos, fmt.Errorf("s3: seek %s: whence %d", r.key, whence)
	}
	if offset < 0 {
		return r.pos, fmt.Errorf("s3: seek %s: negative offset %d", r.key, offset)
	}
	r.pos = offset
	return offset, nil
}

// Close closes the open response, if any.
func (r *reader) Close() error {
	r.closed = true
	r.dropBody()
	return nil
}
