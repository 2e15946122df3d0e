package s3

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/nix-cached/cached/storage"
)

// TestCreateFor checks uploads whose key is known at Create: a multipart
// one goes straight to its key (no temporary object, no copy), appears
// only at Commit, and leaves an existing object alone when it fails.
func TestCreateFor(t *testing.T) {
	srv := startMinIO(t)
	cfg := testConfig(t, srv, "", nil)
	s := newTestStore(t, cfg)
	const key = "nar/known.nar.zst"
	old := payload(7, 1000)
	mustPut(t, s, key, old)
	data := payload(8, 3*minPartSize+77)

	u, err := s.CreateFor(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeAll(u, data[:2*minPartSize+1]); err != nil {
		t.Fatal(err)
	}
	mid := inspect(t, srv, cfg.Bucket)
	if len(mid.temporaries()) != 0 || !slices.Contains(mid.uploads, cfg.Prefix+"/"+key) {
		t.Fatalf("mid-upload the bucket holds %+v, want a multipart upload to the key itself", mid)
	}
	if got := mustGet(t, s, key); !bytes.Equal(got, old) {
		t.Fatal("the object changed before Commit")
	}
	if err := writeAll(u, data[2*minPartSize+1:]); err != nil {
		t.Fatal(err)
	}
	if err := u.Commit(t.Context(), key); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, key); !bytes.Equal(got, data) {
		t.Fatal("the committed object differs from what was written")
	}
	if st := inspect(t, srv, cfg.Bucket); len(st.uploads) != 0 || len(st.temporaries()) != 0 {
		t.Fatalf("after Commit the bucket still holds %+v", st)
	}

	// Abort, and Commit under another key, leave the object as it was.
	for _, end := range []func(storage.Upload) error{
		func(u storage.Upload) error { return u.Abort() },
		func(u storage.Upload) error { return u.Commit(t.Context(), "nar/other.nar.zst") },
	} {
		u, err := s.CreateFor(t.Context(), key)
		if err != nil {
			t.Fatal(err)
		}
		if err := writeAll(u, payload(9, 2*minPartSize+5)); err != nil {
			t.Fatal(err)
		}
		err = end(u)
		if err != nil && !errors.Is(err, storage.ErrInvalidKey) {
			t.Fatalf("ending the upload: %v", err)
		}
		if got := mustGet(t, s, key); !bytes.Equal(got, data) {
			t.Fatal("a discarded upload changed the object")
		}
		st := inspect(t, srv, cfg.Bucket)
		if len(st.uploads) != 0 || len(st.temporaries()) != 0 || slices.Contains(st.objects, cfg.Prefix+"/nar/other.nar.zst") {
			t.Fatalf("a discarded upload left %+v", st)
		}
	}
}
