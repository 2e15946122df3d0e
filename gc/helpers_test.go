package gc

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/catalog/sqlite"
	"github.com/nix-cached/cached/ingest"
	"github.com/nix-cached/cached/internal/testclock"
	"github.com/nix-cached/cached/nar"
	"github.com/nix-cached/cached/narinfo"
	"github.com/nix-cached/cached/nixbase32"
	"github.com/nix-cached/cached/nixhash"
	"github.com/nix-cached/cached/signing"
	"github.com/nix-cached/cached/storage"
	"github.com/nix-cached/cached/storage/memory"
)

// fixture is an Ingester over a memory store and a real SQLite catalog
// that publishes paths as Nix pushes them, on a settable clock.
type fixture struct {
	t      testing.TB
	ing    *ingest.Ingester
	store  storage.Store
	cat    catalog.Catalog
	clock  *testclock.Clock
	blobs  *timedStore // the store, as the test controls it
	dbPath string
}

// newFixture returns an empty cache storing NARs as mode says. It allows
// incomplete closures, so that tests can publish broken ones.
func newFixture(t testing.TB, mode string) *fixture {
	t.Helper()
	dbPath := filepath.Join(t.TempDir(), "catalog.db")
	cat, err := sqlite.Open(context.Background(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	key, err := signing.GenerateKey("gc-test-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	// Three years ago, so that scenarios can move years forward and stay
	// in the past (Verify bounds what it checks by the real clock).
	clk := testclock.New(time.Now().AddDate(-3, 0, 0).Truncate(time.Second))
	store := &timedStore{Store: memory.New(), clock: clk, times: make(map[string]time.Time)}
	ing, err := ingest.New(store, cat, ingest.Options{
		Mode:                   mode,
		Keys:                   []signing.SecretKey{key},
		AllowIncompleteClosure: true,
		Now:                    clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, ing: ing, store: store, cat: cat, clock: clk, blobs: store, dbPath: dbPath}
}

// errInjected is a storage failure a test asked for.
var errInjected = errors.New("injected storage failure")

// timedStore is a storage.Store whose objects are stamped with the test
// clock's time when committed, and whose deletes can be made to fail.
type timedStore struct {
	storage.Store
	clock *testclock.Clock

	mu         sync.Mutex
	times      map[string]time.Time
	failDelete func(key string) bool
	deleted    []string
}

func (s *timedStore) Create(ctx context.Context) (storage.Upload, error) {
	u, err := s.Store.Create(ctx)
	if err != nil {
		return nil, err
	}
	return &timedUpload{Upload: u, s: s}, nil
}

func (s *timedStore) stamp(i storage.Info) storage.Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.times[i.Key]; ok {
		i.ModTime = t
	}
	return i
}

func (s *timedStore) Stat(ctx context.Context, key string) (storage.Info, error) {
	i, err := s.Store.Stat(ctx, key)
	if err != nil {
		return i, err
	}
	return s.stamp(i), nil
}

func (s *timedStore) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	return s.Store.List(ctx, prefix, func(i storage.Info) error { return fn(s.stamp(i)) })
}

func (s *timedStore) Delete(ctx context.Context, key string) error {
	s.mu.Lock()
	fail := s.failDelete != nil && s.failDelete(key)
	s.mu.Unlock()
	if fail {
		return fmt.Errorf("deleting %s: %w", key, errInjected)
	}
	if err := s.Store.Delete(ctx, key); err != nil {
		return err
	}
	s.mu.Lock()
	s.deleted = append(s.deleted, key)
	s.mu.Unlock()
	return nil
}

// setFailDelete makes Delete fail for the keys fail reports (nil: none).
func (s *timedStore) setFailDelete(fail func(key string) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failDelete = fail
}

// timedUpload stamps its key at Commit.
type timedUpload struct {
	storage.Upload
	s *timedStore
}

func (u *timedUpload) Commit(ctx context.Context, key string) error {
	if err := u.Upload.Commit(ctx, key); err != nil {
		return err
	}
	u.s.mu.Lock()
	u.s.times[key] = u.s.clock.Now()
	u.s.mu.Unlock()
	return nil
}

// storePath returns a store path basename made from name.
func storePath(name string) string {
	sum := sha256.Sum256([]byte(name))
	return nixbase32.EncodeToString(sum[:20]) + "-" + name
}

// makeNAR returns a NAR of a directory holding a file with text, an
// executable and a symlink.
func makeNAR(t testing.TB, text []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := nar.NewWriter(&buf)
	for _, h := range []*nar.Header{
		{Path: "/", Type: nar.TypeDirectory},
		{Path: "/bin", Type: nar.TypeDirectory},
		{Path: "/bin/run", Type: nar.TypeRegular, Executable: true, Size: 10},
		{Path: "/data", Type: nar.TypeRegular, Size: int64(len(text))},
		{Path: "/link", Type: nar.TypeSymlink, LinkTarget: "bin/run"},
	} {
		if err := w.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		switch h.Path {
		case "/bin/run":
			io.WriteString(w, "#!/bin/sh\n")
		case "/data":
			w.Write(text)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// compress compresses data as Nix does for comp.
func compress(t testing.TB, comp string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	var err error
	switch comp {
	case ingest.CompNone:
		return data
	case ingest.CompXZ:
		w, err = xz.NewWriter(&buf)
	case ingest.CompZstd:
		w, err = zstd.NewWriter(&buf)
	case ingest.CompGzip:
		w = gzip.NewWriter(&buf)
	default:
		t.Fatalf("no compressor for %s", comp)
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var extension = map[string]string{
	ingest.CompNone: ".nar", ingest.CompXZ: ".nar.xz", ingest.CompZstd: ".nar.zst", ingest.CompGzip: ".nar",
}

// upload sends a NAR holding text, compressed with comp, as Nix does, and
// returns its record and the narinfo a client would send for base.
func (f *fixture) upload(base, comp string, text []byte, refs ...string) (catalog.NAR, narinfo.NarInfo) {
	f.t.Helper()
	plain := makeNAR(f.t, text)
	file := compress(f.t, comp, plain)
	fileSum := sha256.Sum256(file)
	name := nixbase32.EncodeToString(fileSum[:]) + extension[comp]
	n, err := f.ing.NAR(context.Background(), name, bytes.NewReader(file), int64(len(file)))
	if err != nil {
		f.t.Fatalf("uploading %s: %v", name, err)
	}
	return n, narinfo.NarInfo{
		StorePath:   "/nix/store/" + base,
		URL:         "nar/" + name,
		Compression: comp,
		FileHash:    nixhash.NewSHA256(fileSum),
		FileSize:    uint64(len(file)),
		NarHash:     nixhash.NewSHA256(sha256.Sum256(plain)),
		NarSize:     uint64(len(plain)),
		References:  refs,
	}
}

// push uploads and publishes base with the given references (basenames).
func (f *fixture) push(base, comp string, text []byte, refs ...string) catalog.Path {
	f.t.Helper()
	_, ni := f.upload(base, comp, text, refs...)
	p, err := f.ing.NarInfo(context.Background(), base[:32], []byte(ni.String()))
	if err != nil {
		f.t.Fatalf("publishing %s: %v", base, err)
	}
	return p
}

// nar returns the record of a published path's NAR.
func (f *fixture) nar(p catalog.Path) catalog.NAR {
	f.t.Helper()
	n, err := f.cat.LookupNAR(context.Background(), p.NARKey)
	if err != nil {
		f.t.Fatal(err)
	}
	return n
}

// read returns a stored object.
func (f *fixture) read(key string) []byte {
	f.t.Helper()
	r, err := f.store.Open(context.Background(), key)
	if err != nil {
		f.t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

// put replaces a stored object.
func (f *fixture) put(key string, data []byte) {
	f.t.Helper()
	if _, err := storage.Put(context.Background(), f.store, key, bytes.NewReader(data)); err != nil {
		f.t.Fatal(err)
	}
}

// del removes a stored object.
func (f *fixture) del(key string) {
	f.t.Helper()
	if err := f.store.Delete(context.Background(), key); err != nil {
		f.t.Fatal(err)
	}
}
