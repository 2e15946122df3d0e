package gc

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"io"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/catalog/sqlite"
	"github.com/nix-cached/cached/ingest"
	"github.com/nix-cached/cached/nar"
	"github.com/nix-cached/cached/narinfo"
	"github.com/nix-cached/cached/nixbase32"
	"github.com/nix-cached/cached/nixhash"
	"github.com/nix-cached/cached/signing"
	"github.com/nix-cached/cached/storage"
	"github.com/nix-cached/cached/storage/memory"
)

// fixture is an Ingester over a memory store and a real SQLite catalog
// that publishes paths as Nix pushes them.
type fixture struct {
	t     testing.TB
	ing   *ingest.Ingester
	store storage.Store
	cat   catalog.Catalog
}

// newFixture returns an empty cache storing NARs as mode says. It allows
// incomplete closures, so that tests can publish broken ones.
func newFixture(t testing.TB, mode string) *fixture {
	t.Helper()
	cat, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	key, err := signing.GenerateKey("gc-test-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	store := memory.New()
	ing, err := ingest.New(store, cat, ingest.Options{
		Mode:                   mode,
		Keys:                   []signing.SecretKey{key},
		AllowIncompleteClosure: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, ing: ing, store: store, cat: cat}
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
