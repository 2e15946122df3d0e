package s3

import (
	"context"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nix-cached/cached/internal/s3test"
	"github.com/nix-cached/cached/storage/storagetest"
)

// startMinIO starts MinIO for one test and gives this process its
// credentials.
func startMinIO(t *testing.T) *s3test.Server {
	t.Helper()
	srv := s3test.Start(t)
	srv.Setenv(t)
	return srv
}

// testConfig is a configuration for a fresh bucket on srv with small parts
// and quick retries, changed by edit if not nil.
func testConfig(t *testing.T, srv *s3test.Server, endpoint string, edit func(*Config)) Config {
	t.Helper()
	if endpoint == "" {
		endpoint = srv.Endpoint
	}
	cfg := Config{
		Bucket:     srv.NewBucket(t),
		Prefix:     "cache",
		Endpoint:   endpoint,
		PathStyle:  true,
		PartSize:   minPartSize,
		MaxBackoff: 10 * time.Millisecond,
	}
	if edit != nil {
		edit(&cfg)
	}
	return cfg
}

// newTestStore opens a store for cfg that t.Cleanup closes.
func newTestStore(t *testing.T, cfg Config) *Store {
	t.Helper()
	s, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// payload returns n pseudo-random bytes, different for each seed.
func payload(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 'p', 'a', 'y'})
	r.Read(b)
	return b
}

// mustPut and mustGet store and read whole objects.
var (
	mustPut = storagetest.Put
	mustGet = storagetest.Get
)

// bucketState is what a bucket holds, seen directly through the S3 API.
type bucketState struct {
	objects []string // every object key
	uploads []string // the keys of incomplete multipart uploads
}

// temporaries returns the objects under a .uploads/ directory.
func (b bucketState) temporaries() []string {
	var tmp []string
	for _, k := range b.objects {
		if strings.Contains(k, uploadsDir+"/") {
			tmp = append(tmp, k)
		}
	}
	return tmp
}

// inspect lists the objects and incomplete multipart uploads of bucket.
func inspect(t *testing.T, srv *s3test.Server, bucket string) bucketState {
	t.Helper()
	ctx := context.Background()
	c := srv.Client()
	var st bucketState
	objs := awss3.NewListObjectsV2Paginator(c, &awss3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for objs.HasMorePages() {
		page, err := objs.NextPage(ctx)
		if err != nil {
			t.Fatalf("listing %s: %v", bucket, err)
		}
		for _, o := range page.Contents {
			st.objects = append(st.objects, aws.ToString(o.Key))
		}
	}
	ups := awss3.NewListMultipartUploadsPaginator(c, &awss3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	for ups.HasMorePages() {
		page, err := ups.NextPage(ctx)
		if err != nil {
			t.Fatalf("listing uploads in %s: %v", bucket, err)
		}
		for _, u := range page.Uploads {
			st.uploads = append(st.uploads, aws.ToString(u.Key))
		}
	}
	slices.Sort(st.objects)
	slices.Sort(st.uploads)
	return st
}
