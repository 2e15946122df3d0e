// Package storagetest is the conformance suite every storage.Store driver
// runs: a driver's test is its constructor and one call to Run. The suite
// uses only the storage.Store interface, never the filesystem.
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/nix-cached/cached/storage"
)

// Option changes what Run expects of a driver.
type Option func(*config)

type config struct {
	streaming     bool
	maxKeyLen     int  // longest key the driver stores; 0 means 1024
	reopenMayFail bool // a reader of a replaced object may fail when it seeks back
	nestedHidden  bool // List may omit a key that lies below another key
}

// Streaming declares that the driver streams uploads and reads without
// buffering whole objects, so Run bounds the memory of a 64 MiB round trip.
func Streaming() Option {
	return func(c *config) { c.streaming = true }
}

// MaxKeyLen declares that the driver stores keys of at most n bytes (n below
// 1024), as S3 does when a bucket prefix takes part of its 1,024-byte key
// limit. The suite's longest valid key is then n bytes long, and a valid key
// of n+1 bytes must be refused with storage.ErrInvalidKey by every method.
func MaxKeyLen(n int) Option {
	return func(c *config) { c.maxKeyLen = n }
}

// ReopenMayFail declares that a reader whose object was replaced after Open
// may fail with an error, instead of reading the old bytes again, once it
// seeks back to bytes it has already read: S3 without versioning keeps no
// old object to re-read. Such a reader must still never return the new
// object's bytes, nor a mixture.
func ReopenMayFail() Option {
	return func(c *config) { c.reopenMayFail = true }
}

// NestedKeysMayBeUnlisted declares that List may omit a key that lies below
// another key ("a/b" when "a" exists), as MinIO does: it stores and serves
// such objects but does not list them. The suite still requires them to be
// readable, and never to be listed with a wrong size. Keys of a binary
// cache never nest.
func NestedKeysMayBeUnlisted() Option {
	return func(c *config) { c.nestedHidden = true }
}

// Run runs the conformance suite, calling newStore for a fresh, empty store
// in every subtest. Run closes the stores it gets.
func Run(t *testing.T, newStore func(t *testing.T) storage.Store, opts ...Option) {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	fresh := func(t *testing.T) storage.Store {
		t.Helper()
		s := newStore(t)
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	}
	tests := []struct {
		name string
		fn   func(*testing.T, storage.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"EmptyObject", testEmptyObject},
		{"Missing", testMissing},
		{"DeleteAbsent", testDeleteAbsent},
		{"Overwrite", testOverwrite},
		{"OpenReaderSurvivesOverwrite", func(t *testing.T, s storage.Store) {
			testReaderSurvivesOverwrite(t, s, cfg.reopenMayFail)
		}},
		{"UploadInvisibleUntilCommit", testInvisibleUntilCommit},
		{"Abort", testAbort},
		{"AbortAfterCommit", testAbortAfterCommit},
		{"CommitTwice", testCommitTwice},
		{"CancelledCommit", testCancelledCommit},
		{"CancelledUpload", testCancelledUpload},
		{"DoneContext", testDoneContext},
		{"ConcurrentUploads", testConcurrentUploads},
		{"Seek", testSeek},
		{"ValidKeys", func(t *testing.T, s storage.Store) { testValidKeys(t, s, cfg.keyLimit(), cfg.nestedHidden) }},
		{"InvalidKeys", testInvalidKeys},
		{"List", testList},
		{"ListStops", testListStops},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, fresh(t)) })
	}
	if cfg.maxKeyLen > 0 {
		t.Run("KeyTooLong", func(t *testing.T) { testKeyTooLong(t, fresh(t), cfg.maxKeyLen) })
	}
	t.Run("Large", func(t *testing.T) { testLarge(t, fresh(t), cfg.streaming) })
}

// keyLimit returns the longest key the driver is expected to store.
func (c *config) keyLimit() int {
	if c.maxKeyLen > 0 && c.maxKeyLen < 1024 {
		return c.maxKeyLen
	}
	return 1024
}

// Put stores data under key and fails the test on error. Driver tests may
// use it too.
func Put(t *testing.T, s storage.Store, key string, data []byte) {
	t.Helper()
	n, err := storage.Put(t.Context(), s, key, bytes.NewReader(data))
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	if n != int64(len(data)) {
		t.Fatalf("Put(%q) wrote %d bytes, want %d", key, n, len(data))
	}
}

// Get reads the whole object at key and fails the test on error. Driver
// tests may use it too.
func Get(t *testing.T, s storage.Store, key string) []byte {
	t.Helper()
	r, err := s.Open(t.Context(), key)
	if err != nil {
		t.Fatalf("Open(%q): %v", key, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("reading %q: %v", key, err)
	}
	return b
}

// wantObject checks that key holds exactly data, by Open, Stat and List.
func wantObject(t *testing.T, s storage.Store, key string, data []byte) {
	t.Helper()
	wantReadable(t, s, key, data)
	if l := list(t, s, key); l[key] != int64(len(data)) {
		t.Errorf("List(%q) = %v, want %q with size %d", key, l, key, len(data))
	}
}

// wantReadable checks that key holds exactly data, by Open and Stat.
func wantReadable(t *testing.T, s storage.Store, key string, data []byte) {
	t.Helper()
	if got := Get(t, s, key); !bytes.Equal(got, data) {
		t.Errorf("%q holds %d bytes %.40q, want %d bytes %.40q", key, len(got), got, len(data), data)
	}
	info, err := s.Stat(t.Context(), key)
	if err != nil {
		t.Fatalf("Stat(%q): %v", key, err)
	}
	if info.Size != int64(len(data)) || info.Key != key || info.ModTime.IsZero() {
		t.Errorf("Stat(%q) = %+v, want size %d and a ModTime", key, info, len(data))
	}
}

// wantAbsent checks that key holds nothing, by Open, Stat and List.
func wantAbsent(t *testing.T, s storage.Store, key string) {
	t.Helper()
	if r, err := s.Open(t.Context(), key); !errors.Is(err, storage.ErrNotFound) {
		if err == nil {
			r.Close()
		}
		t.Errorf("Open(%q) = %v, want ErrNotFound", key, err)
	}
	if info, err := s.Stat(t.Context(), key); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat(%q) = %+v, %v; want ErrNotFound", key, info, err)
	}
	if _, listed := list(t, s, key)[key]; listed {
		t.Errorf("List(%q) shows the absent key", key)
	}
}

// list returns the keys and sizes List reports under prefix, failing the
// test on duplicates or keys outside the prefix.
func list(t *testing.T, s storage.Store, prefix string) map[string]int64 {
	t.Helper()
	got := make(map[string]int64)
	err := s.List(t.Context(), prefix, func(info storage.Info) error {
		if _, dup := got[info.Key]; dup {
			t.Errorf("List(%q) reported %q twice", prefix, info.Key)
		}
		if len(info.Key) < len(prefix) || info.Key[:len(prefix)] != prefix {
			t.Errorf("List(%q) reported %q", prefix, info.Key)
		}
		if info.ModTime.IsZero() {
			t.Errorf("List(%q): %q has no ModTime", prefix, info.Key)
		}
		got[info.Key] = info.Size
		return nil
	})
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return got
}

// create starts an upload and fails the test on error.
func create(ctx context.Context, t *testing.T, s storage.Store) storage.Upload {
	t.Helper()
	u, err := s.Create(ctx)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Cleanup(func() { u.Abort() }) //nolint:errcheck // no-op after Commit
	return u
}

// write writes data to u and fails the test on error.
func write(t *testing.T, u storage.Upload, data []byte) {
	t.Helper()
	if n, err := u.Write(data); err != nil || n != len(data) {
		t.Fatalf("Write: %d, %v", n, err)
	}
}
