package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"io"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/catalog/sqlite"
	"github.com/nix-cached/cached/internal/testclock"
	"github.com/nix-cached/cached/nar"
	"github.com/nix-cached/cached/nixbase32"
	"github.com/nix-cached/cached/signing"
	"github.com/nix-cached/cached/storage"
	"github.com/nix-cached/cached/storage/memory"
)

// fixture is an Ingester over a memory store and a real SQLite catalog.
type fixture struct {
	ing   *Ingester
	store storage.Store
	cat   catalog.Catalog
	clock *testclock.Clock
	key   signing.SecretKey
}

func newFixture(t *testing.T, mutate func(*Options)) *fixture {
	t.Helper()
	cat, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	key, err := signing.GenerateKey("test-cache-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: memory.New(), cat: cat, clock: testclock.New(time.Now()), key: key}
	opt := Options{Keys: []signing.SecretKey{key}, Now: f.clock.Now}
	if mutate != nil {
		mutate(&opt)
	}
	f.ing, err = New(f.store, cat, opt)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// entry is one file system object for makeNAR.
type entry struct {
	path     string
	typ      nar.Type
	contents string
	exec     bool
	target   string
}

// makeNAR writes a NAR holding entries (in NAR order).
func makeNAR(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := nar.NewWriter(&buf)
	for _, e := range entries {
		h := &nar.Header{Path: e.path, Type: e.typ, Executable: e.exec, Size: int64(len(e.contents)), LinkTarget: e.target}
		if err := w.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == nar.TypeRegular {
			if _, err := io.WriteString(w, e.contents); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sampleNAR is a small tree with every kind of node.
func sampleNAR(t testing.TB, text string) []byte {
	return makeNAR(t,
		entry{path: "/", typ: nar.TypeDirectory},
		entry{path: "/bin", typ: nar.TypeDirectory},
		entry{path: "/bin/hello", typ: nar.TypeRegular, contents: "#!/bin/sh\necho " + text + "\n", exec: true},
		entry{path: "/empty", typ: nar.TypeRegular},
		entry{path: "/link", typ: nar.TypeSymlink, target: "bin/hello"},
	)
}

// compress compresses data as Nix would for comp.
func compress(t testing.TB, comp string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	switch comp {
	case CompNone:
		return data
	case CompXZ:
		w, err := xz.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	case CompZstd:
		w, _ := zstd.NewWriter(&buf)
		w.Write(data)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	case CompGzip:
		w := gzip.NewWriter(&buf)
		w.Write(data)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	case CompBzip2:
		cmd := exec.Command("bzip2", "-c")
		cmd.Stdin = bytes.NewReader(data)
		cmd.Stdout = &buf
		if err := cmd.Run(); err != nil {
			t.Fatalf("bzip2: %v", err)
		}
	default:
		t.Fatalf("unknown compression %s", comp)
	}
	return buf.Bytes()
}

// nameFor is the name Nix uploads a compressed NAR under.
func nameFor(comp string, file []byte) string {
	sum := sha256.Sum256(file)
	return nixbase32.EncodeToString(sum[:]) + extensionOf(comp)
}

// readBlob returns a stored object's bytes.
func readBlob(t testing.TB, s storage.Store, key string) []byte {
	t.Helper()
	f, err := s.Open(context.Background(), key)
	if err != nil {
		t.Fatalf("open %s: %v", key, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// keys lists every stored key.
func keys(t testing.TB, s storage.Store) []string {
	t.Helper()
	var out []string
	if err := s.List(context.Background(), "", func(i storage.Info) error {
		out = append(out, i.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}
