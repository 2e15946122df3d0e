package s3

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// copyWorkers is how many UploadPartCopy calls a multipart copy runs at once.
const copyWorkers = 4

// copyObject copies the object src, of size bytes, to dst server-side:
// with CopyObject up to s.copyLimit, beyond with a multipart copy. Either
// way dst shows the old object until the copy is whole.
func (s *Store) copyObject(ctx context.Context, src, dst string, size int64) error {
	source := copySource(s.cfg.Bucket, src)
	if size <= s.copyLimit {
		_, err := s.client.CopyObject(ctx, &awss3.CopyObjectInput{
			Bucket:     aws.String(s.cfg.Bucket),
			Key:        aws.String(dst),
			CopySource: aws.String(source),
		}, s.slow)
		return err
	}
	return s.multipartCopy(ctx, source, dst, size)
}

// multipartCopy copies the source object of size bytes to dst in ranges,
// each with UploadPartCopy, and aborts the multipart upload on failure.
func (s *Store) multipartCopy(ctx context.Context, source, dst string, size int64) (err error) {
	out, err := s.client.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{
		Bucket: aws.String(s.cfg.Bucket),
		Key:    aws.String(dst),
	})
	if err != nil {
		return fmt.Errorf("starting a multipart copy: %w", err)
	}
	id := aws.ToString(out.UploadId)
	s.setLive(id, true)
	defer s.setLive(id, false)
	defer func() {
		if err == nil {
			return
		}
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		_, aerr := s.client.AbortMultipartUpload(actx, &awss3.AbortMultipartUploadInput{
			Bucket:   aws.String(s.cfg.Bucket),
			Key:      aws.String(dst),
			UploadId: aws.String(id),
		})
		if aerr != nil && !isNotFound(aerr) {
			err = fmt.Errorf("%w (and aborting the multipart copy: %v)", err, aerr)
		}
	}()

	step := max(s.copyPartSize, (size+maxParts-1)/maxParts)
	n := int((size + step - 1) / step)
	parts := make([]types.CompletedPart, n)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		errs  []error
		slots = make(chan struct{}, copyWorkers)
	)
	for i := range n {
		slots <- struct{}{}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-slots }()
			first := int64(i) * step
			last := min(first+step, size) - 1
			out, err := s.client.UploadPartCopy(ctx, &awss3.UploadPartCopyInput{
				Bucket:          aws.String(s.cfg.Bucket),
				Key:             aws.String(dst),
				UploadId:        aws.String(id),
				PartNumber:      aws.Int32(int32(i + 1)),
				CopySource:      aws.String(source),
				CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", first, last)),
			}, s.slow)
			if err == nil && out.CopyPartResult == nil {
				err = errors.New("response without a CopyPartResult")
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("copying part %d: %w", i+1, err))
				mu.Unlock()
				cancel()
				return
			}
			parts[i] = types.CompletedPart{ETag: out.CopyPartResult.ETag, PartNumber: aws.Int32(int32(i + 1))}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err = s.client.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{
		Bucket:          aws.String(s.cfg.Bucket),
		Key:             aws.String(dst),
		UploadId:        aws.String(id),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	}, s.slow)
	if err != nil {
		return fmt.Errorf("completing a multipart copy: %w", err)
	}
	return nil
}

// copySource returns the x-amz-copy-source value naming key in bucket,
// percent-encoding every byte but unreserved ones and slashes.
func copySource(bucket, key string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.WriteString(bucket)
	b.WriteByte('/')
	for i := 0; i < len(key); i++ {
		c := key[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '/' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}
