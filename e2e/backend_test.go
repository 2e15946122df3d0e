package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nix-cached/cached/internal/s3test"
	"github.com/nix-cached/cached/storage"
	"github.com/nix-cached/cached/storage/disk"
	"github.com/nix-cached/cached/storage/s3"
)

// blobBackend is where a test server keeps its blobs: the data directory's
// disk (the default) or a bucket on a real S3 server.
type blobBackend struct {
	name   string
	url    string   // the --storage value, "" for the default
	env    []string // environment for the server (S3 credentials)
	minio  *s3test.Server
	bucket string
}

// args returns the storage flags for a server.
func (b blobBackend) args() []string {
	if b.url == "" {
		return nil
	}
	return []string{"--storage", b.url}
}

// eachBackend runs f once on disk storage and once on S3 (MinIO), as
// subtests.
func eachBackend(t *testing.T, f func(t *testing.T, b blobBackend)) {
	t.Run("disk", func(t *testing.T) { f(t, blobBackend{name: "disk"}) })
	t.Run("s3", func(t *testing.T) { f(t, newS3Backend(t)) })
}

// newS3Backend starts MinIO with a fresh bucket and gives this test
// process the credentials too, for inspecting the bucket.
func newS3Backend(t *testing.T) blobBackend {
	t.Helper()
	m := s3test.Start(t)
	bucket := m.NewBucket(t)
	b := blobBackend{name: "s3", url: m.URL(bucket, "cache"), env: m.Env(), minio: m, bucket: bucket}
	for _, kv := range b.env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	return b
}

// blobKeys lists the blobs under prefix, opening the storage the way the
// server does.
func (b blobBackend) blobKeys(t *testing.T, data, prefix string) []string {
	t.Helper()
	ctx := context.Background()
	var store storage.Store
	var err error
	if b.url == "" {
		if _, serr := os.Stat(filepath.Join(data, "blobs")); os.IsNotExist(serr) {
			return nil
		}
		store, err = disk.New(filepath.Join(data, "blobs"))
	} else {
		var cfg s3.Config
		if cfg, err = s3.ParseURL(b.url); err == nil {
			store, err = s3.New(ctx, cfg)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var keys []string
	if err := store.List(ctx, prefix, func(i storage.Info) error {
		keys = append(keys, i.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return keys
}

// uploading reports whether the bucket holds an incomplete multipart
// upload: a large blob is being written at this moment.
func (b blobBackend) uploading(t *testing.T) bool {
	t.Helper()
	out, err := b.minio.Client().ListMultipartUploads(context.Background(),
		&awss3.ListMultipartUploadsInput{Bucket: aws.String(b.bucket)})
	return err == nil && len(out.Uploads) > 0
}
