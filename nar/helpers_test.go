package nar

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// u64 is a raw little-endian integer in mk.
type u64 uint64

// raw is bytes copied unchanged in mk.
type raw []byte

// mk builds NAR bytes by hand: a string is a padded NAR string, u64 a bare
// integer, raw bytes as they are, and a []any is flattened.
func mk(parts ...any) []byte {
	var b []byte
	for _, p := range parts {
		switch v := p.(type) {
		case string:
			b = appendString(b, v)
		case u64:
			b = binary.LittleEndian.AppendUint64(b, uint64(v))
		case raw:
			b = append(b, v...)
		case []any:
			b = append(b, mk(v...)...)
		default:
			panic("mk: unexpected part")
		}
	}
	return b
}

// ent is a directory entry holding node.
func ent(name string, node ...any) []any {
	return []any{"entry", "(", "name", name, "node", node, ")"}
}

// file is a regular file node.
func file(contents string) []any {
	return []any{"(", "type", "regular", "contents", contents, ")"}
}

// dir is a directory node holding entries.
func dir(entries ...[]any) []any {
	n := []any{"(", "type", "directory"}
	for _, e := range entries {
		n = append(n, e)
	}
	return append(n, ")")
}

// deepest is the most directories nested() may hold for a file "f" below
// them to be within MaxPath: "/d" levels times, then "/f".
const deepest = (MaxPath - 2) / 2

// nested returns a root directory holding levels nested directories named
// "d", the deepest holding leaf under the name "f" (when leaf is non-nil).
func nested(levels int, leaf []any) []any {
	n := []any{"(", "type", "directory", ")"}
	if leaf != nil {
		n = dir(ent("f", leaf...))
	}
	for range levels {
		n = dir(ent("d", n...))
	}
	return n
}

// entry is a node read from a NAR with its contents.
type entry struct {
	Header
	Contents string
}

// readAll reads every node of a NAR, returning what it read before the
// first error; err is nil when the NAR ended cleanly.
func readAll(src io.Reader) ([]entry, error) {
	r := NewReader(src)
	var out []entry
	for {
		h, err := r.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		var b []byte
		if h.Type == TypeRegular {
			if b, err = io.ReadAll(r); err != nil {
				return out, err
			}
		}
		out = append(out, entry{*h, string(b)})
	}
}

// rewrite writes entries back into a NAR with Writer.
func rewrite(entries []entry) ([]byte, error) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for _, e := range entries {
		h := e.Header
		if err := w.WriteHeader(&h); err != nil {
			return nil, err
		}
		if _, err := io.WriteString(w, e.Contents); err != nil {
			return nil, err
		}
	}
	err := w.Close()
	return buf.Bytes(), err
}

// golden reads testdata/name.
func golden(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// goldenNARs are the NARs written by nix-store --dump (Nix 2.8.0) under
// testdata, each with the .ls listing nix copy wrote for it.
var goldenNARs = []string{"file", "symlink", "tree"}

var errBoom = errors.New("boom")

// failingReader returns data, then err.
type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

// failingWriter accepts n bytes, then fails.
type failingWriter struct{ n int }

func (f *failingWriter) Write(p []byte) (int, error) {
	if len(p) <= f.n {
		f.n -= len(p)
		return len(p), nil
	}
	n := f.n
	f.n = 0
	return n, errBoom
}
