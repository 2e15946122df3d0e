package s3

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nix-cached/cached/storage"
)

// TestOutage stops MinIO under a store: every call fails, and none says
// that an object is absent. After a restart the same store works again.
func TestOutage(t *testing.T) {
	srv := startMinIO(t)
	s := newTestStore(t, testConfig(t, srv, "", func(c *Config) { c.MaxAttempts = 2 }))
	data := payload(3, 1000)
	mustPut(t, s, "present", data)

	srv.Stop(t)
	for _, key := range []string{"present", "absent"} {
		if info, err := s.Stat(t.Context(), key); err == nil || errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Stat(%q) with S3 down = %+v, %v; want an error that is not ErrNotFound", key, info, err)
		}
		if r, err := s.Open(t.Context(), key); err == nil || errors.Is(err, storage.ErrNotFound) {
			if err == nil {
				r.Close()
			}
			t.Errorf("Open(%q) with S3 down = %v; want an error that is not ErrNotFound", key, err)
		}
	}
	if err := s.List(t.Context(), "", func(storage.Info) error { return nil }); err == nil {
		t.Error("List with S3 down succeeded")
	}
	if _, err := storage.Put(t.Context(), s, "new", bytes.NewReader(data)); err == nil {
		t.Error("Put with S3 down succeeded")
	}
	if err := s.Delete(t.Context(), "present"); err == nil {
		t.Error("Delete with S3 down succeeded")
	}

	srv.Restart(t)
	if got := mustGet(t, s, "present"); !bytes.Equal(got, data) {
		t.Errorf("after the restart, the object holds %d bytes, want %d", len(got), len(data))
	}
	if _, err := s.Stat(t.Context(), "absent"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat of an absent object after the restart = %v, want ErrNotFound", err)
	}
	mustPut(t, s, "new", data)
	if got := mustGet(t, s, "new"); !bytes.Equal(got, data) {
		t.Error("an object put after the restart reads back wrong")
	}
}

// TestRetries puts a proxy in front of MinIO that answers the first two
// tries of every request with a retryable error: each operation succeeds
// anyway.
func TestRetries(t *testing.T) {
	srv := startMinIO(t)
	for _, f := range []fault{
		{status: http.StatusServiceUnavailable, code: "SlowDown"},
		{status: http.StatusServiceUnavailable, code: "ServiceUnavailable"},
		{status: http.StatusInternalServerError, code: "InternalError"},
		{status: http.StatusTooManyRequests, code: "TooManyRequests"},
		{status: http.StatusBadGateway, code: "BadGateway"},
	} {
		t.Run(f.code+"-"+http.StatusText(f.status), func(t *testing.T) {
			proxy := newFaultProxy(t, srv.Endpoint, func(_ *http.Request, seen int) fault {
				if seen < 2 {
					return f
				}
				return fault{}
			})
			s := newTestStore(t, testConfig(t, srv, proxy.URL, nil))
			small, large := payload(1, 1000), payload(2, minPartSize+1000)
			mustPut(t, s, "small", small)
			mustPut(t, s, "large", large)
			for key, want := range map[string][]byte{"small": small, "large": large} {
				if got := mustGet(t, s, key); !bytes.Equal(got, want) {
					t.Errorf("%s reads back %d bytes, want %d", key, len(got), len(want))
				}
				if info, err := s.Stat(t.Context(), key); err != nil || info.Size != int64(len(want)) {
					t.Errorf("Stat(%q) = %+v, %v", key, info, err)
				}
			}
			n := 0
			if err := s.List(t.Context(), "", func(storage.Info) error { n++; return nil }); err != nil || n != 2 {
				t.Errorf("List: %d objects, %v; want 2", n, err)
			}
			if err := s.Delete(t.Context(), "small"); err != nil {
				t.Errorf("Delete: %v", err)
			}
			if faults, _ := proxy.counts(); faults < 20 {
				t.Errorf("the proxy injected only %d faults", faults)
			}
		})
	}
}

// TestTimeouts puts a proxy in front of MinIO that stalls: a request whose
// response never starts, or stops midway, fails on the configured timeout
// instead of hanging. The proxy stalls until the client gives up or the
// test ends, so a call that returns at all gave up on its own.
func TestTimeouts(t *testing.T) {
	srv := startMinIO(t)
	t.Run("Headers", func(t *testing.T) {
		proxy := newFaultProxy(t, srv.Endpoint, func(*http.Request, int) fault { return fault{stall: true} })
		s := newTestStore(t, testConfig(t, srv, proxy.URL, func(c *Config) {
			c.MaxAttempts = 2
			c.ResponseTimeout = 200 * time.Millisecond
		}))
		_, err := s.Stat(t.Context(), "k")
		var ne net.Error
		if errors.Is(err, storage.ErrNotFound) || !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("Stat through a stalled proxy = %v, want a timeout", err)
		}
		// The proxy notices a client hanging up a moment later.
		waitUntil(t, "the proxy sees the client give up on both attempts", func() bool {
			_, gaveUp := proxy.counts()
			return gaveUp == 2
		})
	})
	t.Run("Body", func(t *testing.T) {
		proxy := newFaultProxy(t, srv.Endpoint, func(r *http.Request, _ int) fault {
			return fault{stallBody: r.Method == http.MethodGet}
		})
		s := newTestStore(t, testConfig(t, srv, proxy.URL, func(c *Config) {
			c.ReadTimeout = 200 * time.Millisecond
		}))
		r, err := s.Open(t.Context(), "k")
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer r.Close()
		n, err := io.Copy(io.Discard, r)
		if err == nil || n >= 1<<20 {
			t.Errorf("reading a stalled body: %d bytes, %v; want a timeout", n, err)
		}
		t.Logf("a stalled body fails after %d bytes: %v", n, err)
	})
}

// TestNewOffline opens a store whose S3 does not answer: New succeeds, and
// calls fail without claiming that anything is absent.
func TestNewOffline(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "offline")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "offline-secret")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	s, err := New(t.Context(), Config{Bucket: "bucket", Endpoint: "http://" + addr, PathStyle: true, MaxAttempts: 1})
	if err != nil {
		t.Fatalf("New with S3 unreachable: %v", err)
	}
	defer s.Close()
	if _, err := s.Stat(t.Context(), "k"); err == nil || errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat with S3 unreachable = %v, want an error that is not ErrNotFound", err)
	}
	if strings.Contains(fmt.Sprint(s.Stat(t.Context(), "k")), "offline-secret") {
		t.Error("an error shows the secret key")
	}
}

// TestNotFoundOnlyFor404 answers every request with one error and checks
// which errors mean "absent": a 404 about the object only. Denied access,
// server errors and a missing bucket are "could not tell".
func TestNotFoundOnlyFor404(t *testing.T) {
	srv := startMinIO(t)
	tests := []struct {
		f          fault
		statAbsent bool // a HEAD response has no body, so no error code
		openAbsent bool
	}{
		{fault{status: http.StatusNotFound, code: "NoSuchKey"}, true, true},
		{fault{status: http.StatusNotFound, code: "NoSuchBucket"}, true, false},
		{fault{status: http.StatusForbidden, code: "AccessDenied"}, false, false},
		{fault{status: http.StatusBadRequest, code: "InvalidRequest"}, false, false},
		{fault{status: http.StatusInternalServerError, code: "InternalError"}, false, false},
		{fault{status: http.StatusServiceUnavailable, code: "SlowDown"}, false, false},
		{fault{status: http.StatusPreconditionFailed, code: "PreconditionFailed"}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.f.code, func(t *testing.T) {
			proxy := newFaultProxy(t, srv.Endpoint, func(*http.Request, int) fault { return tt.f })
			s := newTestStore(t, testConfig(t, srv, proxy.URL, func(c *Config) { c.MaxAttempts = 1 }))
			_, err := s.Stat(t.Context(), "k")
			if err == nil || errors.Is(err, storage.ErrNotFound) != tt.statAbsent {
				t.Errorf("Stat answered %d %s = %v; want absent %v", tt.f.status, tt.f.code, err, tt.statAbsent)
			}
			r, err := s.Open(t.Context(), "k")
			if err == nil {
				r.Close()
			}
			if err == nil || errors.Is(err, storage.ErrNotFound) != tt.openAbsent {
				t.Errorf("Open answered %d %s = %v; want absent %v", tt.f.status, tt.f.code, err, tt.openAbsent)
			}
		})
	}
	// A bucket that does not exist, for real.
	s := newTestStore(t, testConfig(t, srv, "", func(c *Config) { c.Bucket = "no-such-bucket" }))
	if _, err := s.Open(t.Context(), "k"); err == nil || errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Open in a missing bucket = %v, want an error that is not ErrNotFound", err)
	}
	if err := s.List(t.Context(), "", func(storage.Info) error { return nil }); err == nil {
		t.Error("List of a missing bucket succeeded")
	}
}
