package nar

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// TestWriterGolden re-writes the NARs Nix wrote, byte for byte.
func TestWriterGolden(t *testing.T) {
	for _, name := range goldenNARs {
		t.Run(name, func(t *testing.T) {
			data := golden(t, name+".nar")
			entries, err := readAll(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			got, err := rewrite(entries)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("re-written NAR differs: %d bytes, want %d", len(got), len(data))
			}
		})
	}
}

// TestWriterRoundTrip writes trees by hand and reads them back.
func TestWriterRoundTrip(t *testing.T) {
	big := strings.Repeat("abcdefg", 20000) // longer than the write buffer
	tests := []struct {
		name    string
		entries []entry
		want    []byte // the NAR, built token by token
	}{
		{"empty file", []entry{{Header: Header{Path: "/", Type: TypeRegular}}},
			mk(magic, file(""))},
		{"executable", []entry{{Header{Path: "/", Type: TypeRegular, Executable: true, Size: 3}, "abc"}},
			mk(magic, "(", "type", "regular", "executable", "", "contents", "abc", ")")},
		{"empty directory", []entry{{Header: Header{Path: "/", Type: TypeDirectory}}},
			mk(magic, dir())},
		{"nested directories closed at once", []entry{
			{Header: Header{Path: "/", Type: TypeDirectory}},
			{Header: Header{Path: "/a", Type: TypeDirectory}},
			{Header: Header{Path: "/a/b", Type: TypeDirectory}},
			{Header{Path: "/a/b/c", Type: TypeRegular, Size: 1}, "c"},
			{Header: Header{Path: "/d", Type: TypeSymlink, LinkTarget: "a/b/c"}},
		}, mk(magic, dir(
			ent("a", dir(ent("b", dir(ent("c", file("c")...))...))...),
			ent("d", "(", "type", "symlink", "target", "a/b/c", ")"),
		))},
		{"large file", []entry{
			{Header: Header{Path: "/", Type: TypeDirectory}},
			{Header{Path: "/big", Type: TypeRegular, Size: int64(len(big))}, big},
			{Header{Path: "/small", Type: TypeRegular, Size: 5}, "small"},
		}, mk(magic, dir(ent("big", file(big)...), ent("small", file("small")...)))},
		{"depth 2047", func() []entry {
			e := []entry{{Header: Header{Path: "/", Type: TypeDirectory}}}
			p := ""
			for range deepest {
				p += "/d"
				e = append(e, entry{Header: Header{Path: p, Type: TypeDirectory}})
			}
			return append(e, entry{Header{Path: p + "/f", Type: TypeRegular, Size: 1}, "x"})
		}(), mk(magic, nested(deepest, file("x")))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := rewrite(tt.entries)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("NAR differs from the hand-built one")
			}
			back, err := readAll(bytes.NewReader(got))
			if err != nil {
				t.Fatal(err)
			}
			if len(back) != len(tt.entries) {
				t.Fatalf("read back %d nodes, want %d", len(back), len(tt.entries))
			}
			for i := range back {
				back[i].Offset = 0
				if back[i] != tt.entries[i] {
					t.Fatalf("node %d read back as %#v", i, back[i].Header)
				}
			}
		})
	}
}

// TestWriterRejects feeds header sequences whose last header is wrong.
func TestWriterRejects(t *testing.T) {
	root := Header{Path: "/", Type: TypeDirectory}
	d := func(p string) Header { return Header{Path: p, Type: TypeDirectory} }
	f := func(p string) Header { return Header{Path: p, Type: TypeRegular} }
	deep := []Header{root}
	for p := ""; len(p) <= MaxPath; {
		p += "/d"
		deep = append(deep, d(p))
	}
	tests := []struct {
		name    string
		headers []Header
		want    string
	}{
		{"root not first", []Header{f("/a")}, `the first header must be the root "/"`},
		{"second root", []Header{root, root}, "empty entry name"},
		{"after a root file", []Header{f("/"), f("/a")}, "the root node is complete"},
		{"relative path", []Header{root, f("a")}, "path is not absolute"},
		{"trailing slash", []Header{root, f("/a/")}, "empty entry name"},
		{"double slash", []Header{root, f("//a")}, "parent directory is not open"},
		{"dot name", []Header{root, f("/.")}, "entry name is . or .."},
		{"dot-dot name", []Header{root, f("/..")}, "entry name is . or .."},
		{"NUL in name", []Header{root, f("/a\x00")}, "NUL byte"},
		{"name of 256 bytes", []Header{root, f("/" + strings.Repeat("n", 256))}, "longer than 255 bytes"},
		{"unsorted", []Header{root, f("/b"), f("/a")}, `names not strictly increasing after "b"`},
		{"duplicate", []Header{root, f("/a"), f("/a")}, `names not strictly increasing after "a"`},
		{"unsorted after subdirectory", []Header{root, d("/b"), f("/b/x"), f("/a")}, "not strictly increasing"},
		{"missing parent", []Header{root, f("/a/b")}, "parent directory is not open"},
		{"reopened directory", []Header{root, d("/a"), f("/b"), f("/a/c")}, "parent directory is not open"},
		{"child of a file", []Header{root, f("/a"), f("/a/b")}, "parent directory is not open"},
		{"path too long", deep, "path longer than 4095 bytes"},
		{"unknown type", []Header{{Path: "/", Type: 9}}, "unknown type Type(9)"},
		{"zero type", []Header{{Path: "/"}}, "unknown type Type(0)"},
		{"negative size", []Header{{Path: "/", Type: TypeRegular, Size: -1}}, "negative size"},
		{"target on a file", []Header{{Path: "/", Type: TypeRegular, LinkTarget: "x"}}, "link target on a regular file"},
		{"empty target", []Header{{Path: "/", Type: TypeSymlink}}, "empty symlink target"},
		{"NUL in target", []Header{{Path: "/", Type: TypeSymlink, LinkTarget: "a\x00"}}, "NUL byte"},
		{"target of 4096 bytes", []Header{{Path: "/", Type: TypeSymlink, LinkTarget: strings.Repeat("t", 4096)}}, "longer than 4095"},
		{"executable symlink", []Header{{Path: "/", Type: TypeSymlink, LinkTarget: "x", Executable: true}}, "on a symlink"},
		{"sized directory", []Header{{Path: "/", Type: TypeDirectory, Size: 1}}, "on a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := NewWriter(&buf)
			last := len(tt.headers) - 1
			for i := range last {
				if err := w.WriteHeader(&tt.headers[i]); err != nil {
					t.Fatalf("header %d: %v", i, err)
				}
			}
			err := w.WriteHeader(&tt.headers[last])
			if !errors.Is(err, ErrHeader) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrHeader containing %q", err, tt.want)
			}
			// The Writer is unchanged: closing it gives the archive of the
			// headers before the rejected one.
			err = w.Close()
			if last == 0 {
				if !errors.Is(err, ErrHeader) {
					t.Fatalf("Close with no root = %v, want ErrHeader", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Close after a rejected header: %v", err)
			}
			back, err := readAll(bytes.NewReader(buf.Bytes()))
			if err != nil || len(back) != last {
				t.Fatalf("archive after a rejected header: %d nodes, %v; want %d", len(back), err, last)
			}
		})
	}
}

func TestWriterContentsLength(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	if err := w.WriteHeader(&Header{Path: "/", Type: TypeDirectory}); err != nil {
		t.Fatal(err)
	}
	if n, err := w.Write([]byte("x")); n != 0 || !errors.Is(err, ErrWriteTooLong) {
		t.Fatalf("Write to a directory = %d, %v; want 0, ErrWriteTooLong", n, err)
	}
	if err := w.WriteHeader(&Header{Path: "/a", Type: TypeRegular, Size: 5}); err != nil {
		t.Fatal(err)
	}
	if n, err := w.Write([]byte("abc")); n != 3 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if err := w.WriteHeader(&Header{Path: "/b", Type: TypeRegular}); !errors.Is(err, ErrShortContents) {
		t.Fatalf("WriteHeader after a short file = %v, want ErrShortContents", err)
	}
	if err := w.Close(); !errors.Is(err, ErrShortContents) {
		t.Fatalf("Close after a short file = %v, want ErrShortContents", err)
	}
	if n, err := w.Write([]byte("defgh")); n != 2 || !errors.Is(err, ErrWriteTooLong) {
		t.Fatalf("Write past Size = %d, %v; want 2, ErrWriteTooLong", n, err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if _, err := w.Write(nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close = %v, want ErrClosed", err)
	}
	if err := w.WriteHeader(&Header{Path: "/c", Type: TypeDirectory}); !errors.Is(err, ErrClosed) {
		t.Fatalf("WriteHeader after Close = %v, want ErrClosed", err)
	}
	want := mk(magic, dir(ent("a", file("abcde")...)))
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("archive differs from the hand-built one")
	}
	if err := NewWriter(io.Discard).Close(); !errors.Is(err, ErrHeader) {
		t.Fatalf("Close of an empty archive = %v, want ErrHeader", err)
	}
}

// TestWriterDestinationErrors checks that a failing destination surfaces on
// every path and sticks.
func TestWriterDestinationErrors(t *testing.T) {
	big := strings.Repeat("x", 2*writeBufSize)
	data := mk(magic, dir(ent("a", file(big)...), ent("b", file("y")...)))
	entries, err := readAll(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 100, writeBufSize, len(data) - 10} {
		w := NewWriter(&failingWriter{n: n})
		var firstErr error
		for _, e := range entries {
			h := e.Header
			if err := w.WriteHeader(&h); err != nil {
				firstErr = err
				break
			}
			if _, err := io.WriteString(w, e.Contents); err != nil {
				firstErr = err
				break
			}
		}
		if firstErr == nil {
			firstErr = w.Close()
		}
		if !errors.Is(firstErr, errBoom) {
			t.Errorf("destination failing after %d bytes: err = %v, want errBoom", n, firstErr)
		}
		if err := w.Close(); !errors.Is(err, errBoom) {
			t.Errorf("destination failing after %d bytes: Close = %v, want the same error", n, err)
		}
	}
}
