package s3

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nix-cached/cached/storage"
)

// gets returns the GET requests among reqs, as their Range headers ("-"
// for none).
func gets(reqs []string) []string {
	var ranges []string
	for _, r := range reqs {
		if !strings.HasPrefix(r, "GET ") {
			continue
		}
		if _, rg, ok := strings.Cut(r[4:], " "); ok {
			ranges = append(ranges, rg)
		} else {
			ranges = append(ranges, "-")
		}
	}
	return ranges
}

// TestRangedReads seeks an open object around and checks both the bytes
// and the requests: a Seek sends nothing, the body from Open serves reads
// that continue where it is, and any other read opens a ranged GET.
func TestRangedReads(t *testing.T) {
	srv := startMinIO(t)
	proxy := newFaultProxy(t, srv.Endpoint, nil)
	s := newTestStore(t, testConfig(t, srv, proxy.URL, nil))
	const size = 300001
	data := payload(7, size)
	mustPut(t, s, "obj", data)
	proxy.requests()

	r, err := s.Open(t.Context(), "obj")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// What http.ServeContent does first: find the size, go back.
	if end, err := r.Seek(0, io.SeekEnd); err != nil || end != size {
		t.Fatalf("Seek(0, End) = %d, %v; want %d", end, err, size)
	}
	if pos, err := r.Seek(0, io.SeekStart); err != nil || pos != 0 {
		t.Fatalf("Seek(0, Start) = %d, %v", pos, err)
	}
	steps := []struct {
		name   string
		offset int64
		whence int
		get    string // the Range of the GET the read needs; "" for none
	}{
		{"read from Open's body", 0, io.SeekCurrent, "-"},
		{"continue", 0, io.SeekCurrent, ""},
		{"jump forward", 1000, io.SeekStart, "bytes=1000-"},
		{"continue after the jump", 0, io.SeekCurrent, ""},
		{"skip four bytes", 4, io.SeekCurrent, "bytes=1024-"},
		{"last byte", -1, io.SeekEnd, "bytes=300000-"},
		{"end", 0, io.SeekEnd, ""},
		{"past the end", size + 10, io.SeekStart, ""},
		{"back to the start", 0, io.SeekStart, "bytes=0-"},
		{"middle, from the end", -150000, io.SeekEnd, "bytes=150001-"},
	}
	for _, st := range steps {
		pos, err := r.Seek(st.offset, st.whence)
		if err != nil {
			t.Fatalf("%s: Seek: %v", st.name, err)
		}
		got := make([]byte, 10)
		n, err := io.ReadFull(r, got)
		want := data[min(pos, size):min(pos+10, size)]
		if pos >= size-10 {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("%s: reading 10 bytes at %d: %v, want EOF", st.name, pos, err)
			}
		} else if err != nil {
			t.Fatalf("%s: Read at %d: %v", st.name, pos, err)
		}
		if !bytes.Equal(got[:n], want) {
			t.Errorf("%s: read %x at %d, want %x", st.name, got[:n], pos, want)
		}
		var wantGets []string
		if st.get != "" {
			wantGets = []string{st.get}
		}
		if g := gets(proxy.requests()); strings.Join(g, ",") != strings.Join(wantGets, ",") {
			t.Errorf("%s: GETs %q, want %q", st.name, g, wantGets)
		}
	}
	r.Close()
	if _, err := r.Read(make([]byte, 1)); err == nil {
		t.Error("Read after Close succeeded")
	}
}

// TestReadAfterReplace checks that a reader whose object is replaced or
// deleted fails with ErrObjectChanged when it needs a new GET, rather than
// read the new object's bytes.
func TestReadAfterReplace(t *testing.T) {
	srv := startMinIO(t)
	s := newTestStore(t, testConfig(t, srv, "", nil))
	old := payload(1, 100000)
	for _, change := range []string{"replace", "same size", "delete"} {
		mustPut(t, s, "obj", old)
		r, err := s.Open(t.Context(), "obj")
		if err != nil {
			t.Fatal(err)
		}
		head := make([]byte, 10)
		if _, err := io.ReadFull(r, head); err != nil || !bytes.Equal(head, old[:10]) {
			t.Fatalf("%s: first read: %v", change, err)
		}
		switch change {
		case "replace":
			mustPut(t, s, "obj", payload(2, 5000))
		case "same size":
			mustPut(t, s, "obj", payload(3, len(old)))
		case "delete":
			if err := s.Delete(t.Context(), "obj"); err != nil {
				t.Fatal(err)
			}
		}
		r.Seek(50000, io.SeekStart)
		n, err := r.Read(make([]byte, 10))
		if n != 0 || !errors.Is(err, ErrObjectChanged) {
			t.Errorf("%s: Read after a seek = %d, %v; want ErrObjectChanged", change, n, err)
		}
		if errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s: a read error of an opened object is ErrNotFound: %v", change, err)
		}
		r.Close()
	}
}

func TestPresignGet(t *testing.T) {
	srv := startMinIO(t)
	s := newTestStore(t, testConfig(t, srv, "", nil))
	data := payload(5, 70000)
	mustPut(t, s, "nar/presigned.nar", data)
	u, err := s.PresignGet(t.Context(), "nar/presigned.nar", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(u, srv.SecretKey) {
		t.Fatal("the presigned URL holds the secret key")
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(got, data) {
		t.Errorf("GET of the presigned URL: %s, %d bytes, %v; want 200 and the object", resp.Status, len(got), err)
	}

	// Presigning does not check existence; fetching an absent one fails.
	u, err = s.PresignGet(t.Context(), "nar/absent.nar", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := http.Get(u); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET of a presigned absent object: %v, %v; want 404", resp, err)
	} else {
		resp.Body.Close()
	}

	if _, err := s.PresignGet(t.Context(), "../x", time.Minute); !errors.Is(err, storage.ErrInvalidKey) {
		t.Errorf("PresignGet of an invalid key = %v, want ErrInvalidKey", err)
	}
	for _, ttl := range []time.Duration{0, -time.Minute, 8 * 24 * time.Hour} {
		if _, err := s.PresignGet(t.Context(), "k", ttl); !errors.Is(err, ErrInvalidTTL) {
			t.Errorf("PresignGet with ttl %v = %v, want ErrInvalidTTL", ttl, err)
		}
	}
}
