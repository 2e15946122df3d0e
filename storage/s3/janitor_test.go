package s3

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nix-cached/cached/internal/s3test"
)

// leftovers makes what crashes leave in bucket: a multipart upload to a
// temporary object with one part, one to a final key (a crashed multipart
// copy), and a temporary object; and things the janitor must spare: an
// object of the cache and a multipart upload outside the cache's prefix.
// It returns the upload ID of the first.
func leftovers(t *testing.T, srv *s3test.Server, bucket string) string {
	t.Helper()
	c := srv.Client()
	ctx := t.Context()
	var first string
	for _, key := range []string{"cache/.uploads/crashed-upload", "cache/nar/crashed-copy.nar", "other/.uploads/not-ours"} {
		out, err := c.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: &bucket, Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		if first == "" {
			first = aws.ToString(out.UploadId)
		}
		if _, err := c.UploadPart(ctx, &awss3.UploadPartInput{
			Bucket: &bucket, Key: aws.String(key), UploadId: out.UploadId,
			PartNumber: aws.Int32(1), Body: bytes.NewReader([]byte("part")),
		}); err != nil {
			t.Fatal(err)
		}
	}
	for _, key := range []string{"cache/.uploads/crashed-commit", "cache/nar/keep.nar"} {
		if _, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: &bucket, Key: aws.String(key), Body: bytes.NewReader([]byte("x"))}); err != nil {
			t.Fatal(err)
		}
	}
	return first
}

// TestJanitorSweep sweeps with a cutoff in the future, so that everything
// counts as stale, and checks what goes and what stays: an upload in
// progress in this process stays, however old.
func TestJanitorSweep(t *testing.T) {
	srv := startMinIO(t)
	cfg := testConfig(t, srv, "", nil)
	s := newTestStore(t, cfg)
	id := leftovers(t, srv, cfg.Bucket)

	// A part sent now is recent for a cutoff in the past only.
	for cutoff, want := range map[time.Time]bool{time.Now().Add(-time.Hour): true, time.Now().Add(time.Hour): false} {
		if recent, err := s.recentPart(t.Context(), "cache/.uploads/crashed-upload", id, cutoff); err != nil || recent != want {
			t.Errorf("recentPart with cutoff %v = %v, %v; want %v", cutoff, recent, err, want)
		}
	}

	live, err := s.Create(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	data := payload(9, minPartSize+100)
	if err := writeAll(live, data); err != nil {
		t.Fatal(err)
	}
	before := inspect(t, srv, cfg.Bucket)
	if len(before.uploads) != 4 {
		t.Fatalf("before the sweep: uploads %v, want 4", before.uploads)
	}
	liveKey := live.(*upload).tmp

	if err := s.sweep(t.Context(), time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("sweep: %v", err)
	}
	after := inspect(t, srv, cfg.Bucket)
	if want := []string{liveKey, "other/.uploads/not-ours"}; !slices.Equal(after.uploads, want) {
		t.Errorf("after the sweep: uploads %v, want %v", after.uploads, want)
	}
	if want := []string{"cache/nar/keep.nar"}; !slices.Equal(after.objects, want) {
		t.Errorf("after the sweep: objects %v, want %v", after.objects, want)
	}

	if err := live.Commit(t.Context(), "nar/live.nar"); err != nil {
		t.Fatalf("committing the upload the sweep spared: %v", err)
	}
	if got := mustGet(t, s, "nar/live.nar"); !bytes.Equal(got, data) {
		t.Error("the upload the sweep spared reads back wrong")
	}
}

// TestJanitorRuns starts a store whose janitor sweeps at once and counts
// everything as stale, and waits for it to clean up.
func TestJanitorRuns(t *testing.T) {
	srv := startMinIO(t)
	cfg := testConfig(t, srv, "", nil)
	leftovers(t, srv, cfg.Bucket)
	s, err := newStore(t.Context(), cfg, janitorSchedule{delay: 0, every: 10 * time.Millisecond, staleAfter: -time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the janitor cleans up", func() bool {
		st := inspect(t, srv, cfg.Bucket)
		return slices.Equal(st.uploads, []string{"other/.uploads/not-ours"}) &&
			slices.Equal(st.objects, []string{"cache/nar/keep.nar"})
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
