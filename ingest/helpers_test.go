package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"

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
	switch comp {
	case CompNone:
		return data
	case CompBzip2:
		cmd := exec.Command("bzip2", "-c")
		cmd.Stdin = bytes.NewReader(data)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("bzip2: %v", err)
		}
		return out
	case CompLzip:
		return lzipFile(t, data)
	}
	var buf bytes.Buffer
	w, err := compressor(comp, &buf)
	if err != nil {
		t.Fatalf("%s: %v", comp, err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// compressor returns an encoder for comp writing to w.
func compressor(comp string, w io.Writer) (io.WriteCloser, error) {
	switch comp {
	case CompXZ:
		return xz.NewWriter(w)
	case CompZstd:
		return zstd.NewWriter(w)
	case CompGzip:
		return gzip.NewWriter(w), nil
	case CompBrotli:
		return brotli.NewWriter(w), nil
	case CompLZ4:
		return lz4.NewWriter(w), nil
	case CompLZMA:
		return lzma.NewWriter(w)
	}
	return nil, fmt.Errorf("unknown compression %s", comp)
}

// lzipFile makes a one-member lzip file of data, with a 1 MiB dictionary:
// a raw LZMA stream with an end marker between lzip's header and trailer.
func lzipFile(t testing.TB, data []byte) []byte {
	t.Helper()
	var stream bytes.Buffer
	w, err := lzma.WriterConfig{DictCap: 1 << 20, EOSMarker: true,
		Properties: &lzma.Properties{LC: 3, LP: 0, PB: 2}}.NewWriter(&stream)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	raw := stream.Bytes()[lzma.HeaderLen:]
	out := append([]byte("LZIP\x01\x14"), raw...) // 0x14: 2^20 bytes
	out = binary.LittleEndian.AppendUint32(out, crc32.ChecksumIEEE(data))
	out = binary.LittleEndian.AppendUint64(out, uint64(len(data)))
	return binary.LittleEndian.AppendUint64(out, uint64(len(out)+8))
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
