package s3

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nix-cached/cached/storage"
)

// ErrInvalidTTL is returned by PresignGet for a lifetime S3 cannot sign.
var ErrInvalidTTL = errors.New("s3: presigned URL lifetime must be between 1 s and 7 days")

// maxPresignTTL is the longest lifetime of a SigV4 presigned URL.
const maxPresignTTL = 7 * 24 * time.Hour

// Stat reports an object's size and modification time with HeadObject.
// Only a 404 means the object is absent.
func (s *Store) Stat(ctx context.Context, key string) (storage.Info, error) {
	obj, err := s.check(ctx, "stat", key)
	if err != nil {
		return storage.Info{}, err
	}
	out, err := s.client.HeadObject(ctx, &awss3.HeadObjectInput{
		Bucket: aws.String(s.cfg.Bucket),
		Key:    aws.String(obj),
	})
	if err != nil {
		return storage.Info{}, wrap("stat", key, err)
	}
	return storage.Info{
		Key:     key,
		Size:    aws.ToInt64(out.ContentLength),
		ModTime: aws.ToTime(out.LastModified),
	}, nil
}

// Delete removes an object. Deleting an absent object succeeds.
func (s *Store) Delete(ctx context.Context, key string) error {
	obj, err := s.check(ctx, "delete", key)
	if err != nil {
		return err
	}
	if err := s.deleteObject(ctx, obj); err != nil {
		return fmt.Errorf("s3: delete %s: %w", key, err)
	}
	return nil
}

// deleteObject deletes the object obj; an absent one is no error.
func (s *Store) deleteObject(ctx context.Context, obj string) error {
	_, err := s.client.DeleteObject(ctx, &awss3.DeleteObjectInput{
		Bucket: aws.String(s.cfg.Bucket),
		Key:    aws.String(obj),
	})
	if err != nil && !isNotFound(err) {
		return err
	}
	return nil
}

// List calls fn for every object whose key starts with prefix, paging
// through ListObjectsV2. Objects whose names are no valid key, such as the
// temporary objects under .uploads/, are skipped.
func (s *Store) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("s3: list %q: %w", prefix, err)
	}
	if !mayPrefixKey(prefix) || len(s.prefix)+len(prefix) > maxKeyLen {
		return nil
	}
	p := awss3.NewListObjectsV2Paginator(s.client, &awss3.ListObjectsV2Input{
		Bucket: aws.String(s.cfg.Bucket),
		Prefix: aws.String(s.prefix + prefix),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("s3: list %q: %w", prefix, err)
		}
		for _, o := range page.Contents {
			key, ok := strings.CutPrefix(aws.ToString(o.Key), s.prefix)
			if !ok || !strings.HasPrefix(key, prefix) || storage.ValidateKey(key) != nil {
				continue
			}
			info := storage.Info{Key: key, Size: aws.ToInt64(o.Size), ModTime: aws.ToTime(o.LastModified)}
			if err := fn(info); err != nil {
				return err
			}
		}
	}
	return nil
}

// mayPrefixKey reports whether some valid key starts with prefix.
func mayPrefixKey(prefix string) bool {
	return prefix == "" || storage.ValidateKey(prefix) == nil || storage.ValidateKey(prefix+"x") == nil
}

// PresignGet returns a URL that serves the object with a plain GET for
// ttl, signed with the store's credentials. It does not contact S3.
func (s *Store) PresignGet(ctx context.Context, key string, ttl time.Duration) (string, error) {
	obj, err := s.check(ctx, "presign", key)
	if err != nil {
		return "", err
	}
	if ttl < time.Second || ttl > maxPresignTTL {
		return "", fmt.Errorf("s3: presign %s: %w (got %v)", key, ErrInvalidTTL, ttl)
	}
	req, err := s.presign.PresignGetObject(ctx, &awss3.GetObjectInput{
		Bucket: aws.String(s.cfg.Bucket),
		Key:    aws.String(obj),
	}, awss3.WithPresignExpires(ttl))
	if err != nil {
		return "", fmt.Errorf("s3: presign %s: %w", key, err)
	}
	return req.URL, nil
}

// wrap names op and key in err, and turns a 404 into storage.ErrNotFound.
func wrap(op, key string, err error) error {
	if isNotFound(err) {
		return fmt.Errorf("s3: %s %s: %w", op, key, storage.ErrNotFound)
	}
	return fmt.Errorf("s3: %s %s: %w", op, key, err)
}
