package s3

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nix-cached/cached/storage"
)

// writeAll writes data to u in 64 KiB pieces, as io.Copy would.
func writeAll(u storage.Upload, data []byte) error {
	for len(data) > 0 {
		n := min(len(data), 64<<10)
		if _, err := u.Write(data[:n]); err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

// waitUntil polls cond until it holds, failing t after a minute.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting until %s", what)
}

// TestMultipartLeavesNothing ends multipart uploads every way they can end
// and checks that the bucket then holds the whole object or nothing: no
// temporary object, no incomplete multipart upload.
func TestMultipartLeavesNothing(t *testing.T) {
	srv := startMinIO(t)
	data := payload(1, 2*minPartSize+12345) // three parts of 5 MiB, 5 MiB and 12345 bytes
	const key = "nar/big.nar.zst"
	always := func(pick func(*http.Request) bool) func(*http.Request, int) fault {
		return func(r *http.Request, _ int) fault {
			if pick(r) {
				return fault{status: 500, code: "InternalError"}
			}
			return fault{}
		}
	}
	commit := func(t *testing.T, u storage.Upload, _ context.CancelFunc) error {
		return u.Commit(t.Context(), key)
	}
	tests := []struct {
		name      string
		rule      func(*http.Request, int) fault // nil: no failure injected
		end       func(*testing.T, storage.Upload, context.CancelFunc) error
		committed bool
	}{
		{"Commit", nil, commit, true},
		{"Abort", nil, func(_ *testing.T, u storage.Upload, _ context.CancelFunc) error {
			if err := u.Abort(); err != nil {
				t.Errorf("Abort: %v", err)
			}
			return errors.New("aborted")
		}, false},
		{"CancelThenWrite", nil, func(_ *testing.T, u storage.Upload, cancel context.CancelFunc) error {
			cancel()
			_, err := u.Write([]byte("more"))
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Write after cancel = %v, want context.Canceled", err)
			}
			return err
		}, false},
		{"CancelAndWalkAway", nil, func(_ *testing.T, _ storage.Upload, cancel context.CancelFunc) error {
			cancel() // nothing else: the upload cleans up on its own
			return errors.New("cancelled")
		}, false},
		{"CancelledCommit", nil, func(t *testing.T, u storage.Upload, _ context.CancelFunc) error {
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			return u.Commit(ctx, key)
		}, false},
		{"PartFails", always(func(r *http.Request) bool {
			return isUploadPart(r) && r.URL.Query().Get("partNumber") == "2"
		}), commit, false},
		{"CompleteFails", always(isComplete), commit, false},
		{"CopyFails", always(isCopy), commit, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proxy := newFaultProxy(t, srv.Endpoint, tt.rule)
			cfg := testConfig(t, srv, proxy.URL, func(c *Config) { c.MaxAttempts = 2 })
			s := newTestStore(t, cfg)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			u, err := s.Create(ctx)
			if err != nil {
				t.Fatal(err)
			}
			werr := writeAll(u, data)
			if tt.rule == nil {
				if werr != nil {
					t.Fatalf("Write: %v", werr)
				}
				st := inspect(t, srv, cfg.Bucket)
				if len(st.uploads) != 1 || !strings.HasPrefix(st.uploads[0], "cache/.uploads/") {
					t.Fatalf("after writing %d bytes, the multipart uploads are %v, want one under cache/.uploads/", len(data), st.uploads)
				}
			}
			err = tt.end(t, u, cancel)
			if tt.committed && err != nil {
				t.Fatalf("Commit: %v", err)
			}
			if !tt.committed && err == nil && werr == nil {
				t.Fatal("the upload succeeded")
			}
			clean := func() bool {
				st := inspect(t, srv, cfg.Bucket)
				return len(st.uploads) == 0 && len(st.temporaries()) == 0
			}
			if tt.name == "CancelAndWalkAway" {
				waitUntil(t, "the cancelled upload is cleaned up", clean)
			}
			st := inspect(t, srv, cfg.Bucket)
			if len(st.uploads) != 0 || len(st.temporaries()) != 0 {
				t.Errorf("left behind: uploads %v, temporary objects %v", st.uploads, st.temporaries())
			}
			if tt.committed {
				if !slices.Equal(st.objects, []string{"cache/" + key}) {
					t.Errorf("objects = %v, want only cache/%s", st.objects, key)
				}
				if got := mustGet(t, s, key); !bytes.Equal(got, data) {
					t.Errorf("committed object: %d bytes, want the %d written", len(got), len(data))
				}
			} else {
				if len(st.objects) != 0 {
					t.Errorf("objects = %v, want none", st.objects)
				}
				if _, err := s.Stat(t.Context(), key); !errors.Is(err, storage.ErrNotFound) {
					t.Errorf("Stat after a failed upload = %v, want ErrNotFound", err)
				}
			}
			if tt.rule != nil {
				if faults, _ := proxy.counts(); faults == 0 {
					t.Error("the proxy injected no failure")
				}
			}
			if !tt.committed && err != nil && tt.rule != nil {
				t.Logf("Commit failed as it should: %v", err)
			}
		})
	}
}

// TestMultipartCopy commits objects over the CopyObject limit, which go
// into place with a multipart copy of ranges, and checks the bytes.
func TestMultipartCopy(t *testing.T) {
	srv := startMinIO(t)
	proxy := newFaultProxy(t, srv.Endpoint, nil)
	cfg := testConfig(t, srv, proxy.URL, nil)
	s := newTestStore(t, cfg)
	s.copyLimit, s.copyPartSize = 6<<20, minPartSize
	for i, size := range []int{6<<20 + 1, 2 * minPartSize, 2*minPartSize + 1, 13 << 20} {
		data := payload(uint64(i), size)
		mustPut(t, s, "copied", data)
		var ranges []string
		for _, r := range proxy.requests() {
			if strings.HasPrefix(r, "PUT /"+cfg.Bucket+"/cache/copied?partNumber=") {
				ranges = append(ranges, r)
			}
		}
		if want := (size + minPartSize - 1) / minPartSize; len(ranges) != want {
			t.Errorf("%d bytes copied with %d UploadPartCopy calls, want %d: %v", size, len(ranges), want, ranges)
		}
		if got := mustGet(t, s, "copied"); !bytes.Equal(got, data) {
			t.Errorf("%d bytes copied in parts: read back %d bytes, not the same", size, len(got))
		}
		st := inspect(t, srv, cfg.Bucket)
		if len(st.uploads) != 0 || !slices.Equal(st.objects, []string{"cache/copied"}) {
			t.Errorf("after a multipart copy: uploads %v, objects %v", st.uploads, st.objects)
		}
	}
}

// TestUploadTooLarge fills the last of 10,000 parts and writes one byte
// more. It needs no server: the upload fails before sending anything.
func TestUploadTooLarge(t *testing.T) {
	s, err := New(t.Context(), Config{Bucket: "bucket", Endpoint: "http://127.0.0.1:1", UniformParts: true, PartSize: minPartSize})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	u, err := s.Create(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Abort()
	u.(*upload).part = maxParts
	if err := writeAll(u, make([]byte, minPartSize)); err != nil {
		t.Fatal(err)
	}
	if _, err := u.Write([]byte{1}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Write past 10,000 parts = %v, want ErrTooLarge", err)
	}
	if _, err := u.Write([]byte{1}); !errors.Is(err, ErrUploadClosed) {
		t.Errorf("Write after the failure = %v, want ErrUploadClosed", err)
	}
}
