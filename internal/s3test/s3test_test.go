package s3test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nix-cached/cached/storage/s3"
)

// TestServer starts MinIO, stores an object, kills the server and checks
// that it is gone, then restarts it and finds the object again.
func TestServer(t *testing.T) {
	srv := Start(t)
	if !strings.HasPrefix(srv.Endpoint, "http://127.0.0.1:") {
		t.Errorf("Endpoint = %q, want loopback", srv.Endpoint)
	}
	b1, b2 := srv.NewBucket(t), srv.NewBucket(t)
	if b1 == b2 {
		t.Fatalf("two buckets named %s", b1)
	}
	c := srv.Client()
	put := func(key, body string) error {
		_, err := c.PutObject(t.Context(), &awss3.PutObjectInput{Bucket: &b1, Key: aws.String(key), Body: strings.NewReader(body)})
		return err
	}
	get := func(key string) (string, error) {
		out, err := c.GetObject(t.Context(), &awss3.GetObjectInput{Bucket: &b1, Key: aws.String(key)})
		if err != nil {
			return "", err
		}
		defer out.Body.Close()
		b, err := io.ReadAll(out.Body)
		return string(b), err
	}
	if err := put("k", "kept across restarts"); err != nil {
		t.Fatal(err)
	}

	srv.Stop(t)
	client := &http.Client{Timeout: 5 * time.Second}
	if resp, err := client.Get(srv.Endpoint + "/minio/health/live"); err == nil {
		resp.Body.Close()
		t.Fatal("MinIO still answers after Stop")
	}

	srv.Restart(t)
	if got, err := get("k"); err != nil || got != "kept across restarts" {
		t.Errorf("after Restart: %q, %v", got, err)
	}
}

// TestURL checks that the driver parses the URL and, with Env's
// credentials, reaches the bucket.
func TestURL(t *testing.T) {
	srv := Start(t)
	bucket := srv.NewBucket(t)
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	cfg, err := s3.ParseURL(srv.URL(bucket, "cache"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Bucket != bucket || cfg.Prefix != "cache" || cfg.Endpoint != srv.Endpoint || !cfg.PathStyle {
		t.Errorf("ParseURL(URL) = %+v", cfg)
	}
	store, err := s3.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	u, err := store.Create(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	u.Write([]byte("through the URL"))
	if err := u.Commit(t.Context(), "k"); err != nil {
		t.Fatal(err)
	}
	out, err := srv.Client().GetObject(t.Context(), &awss3.GetObjectInput{Bucket: &bucket, Key: aws.String("cache/k")})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	if b, _ := io.ReadAll(out.Body); !bytes.Equal(b, []byte("through the URL")) {
		t.Errorf("cache/k holds %q", b)
	}
	if cfg, err := s3.ParseURL(srv.URL(bucket, "")); err != nil || cfg.Prefix != "" {
		t.Errorf("ParseURL of the bucket root: %+v, %v", cfg, err)
	}
}
