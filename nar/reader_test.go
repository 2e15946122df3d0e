package nar

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReaderGolden(t *testing.T) {
	reg := func(path, contents string) entry {
		return entry{Header{Path: path, Type: TypeRegular, Size: int64(len(contents))}, contents}
	}
	exe := func(e entry) entry { e.Executable = true; return e }
	dirH := func(path string) entry { return entry{Header: Header{Path: path, Type: TypeDirectory}} }
	link := func(path, target string) entry {
		return entry{Header: Header{Path: path, Type: TypeSymlink, LinkTarget: target}}
	}
	tests := []struct {
		name string
		want []entry
	}{
		{"file", []entry{reg("/", "hello\n")}},
		{"symlink", []entry{link("/", "/some/target")}},
		{"tree", []entry{
			dirH("/"),
			reg("/"+strings.Repeat("0", 255), "l\n"),
			reg("/Zcap", "one\n"),
			reg("/a\x01b", "c\n"),
			reg("/a.txt", "two\n"),
			reg("/back\\slash", "b\n"),
			reg("/bad\xffutf8", "i\n"),
			dirH("/bin"),
			exe(reg("/bin/x", "#!/bin/sh\necho hello\n")),
			reg("/ctl\x02\b\f\r\x1f\x7f", "d\n"),
			reg("/empty", ""),
			dirH("/empty-dir"),
			exe(reg("/empty-exec", "")),
			link("/link", "/nix/store/0rm3pvqy4sikbwkvg5py1msvar18859y-a"),
			reg("/new\nline", "n\n"),
			link("/rel-link", "bin/x"),
			reg("/sp ace", "s\n"),
			dirH("/sub"),
			dirH("/sub/deeper"),
			reg("/sub/deeper/eight", "12345678"),
			link("/sub/odd-link", "odd \\\"target\\\"\\\x01"),
			reg("/sub/seven", "1234567"),
			reg("/tab\tx", "t\n"),
			reg("/utf8-é日本", "u\n"),
			reg("/with \"quote\"", "q\n"),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := golden(t, tt.name+".nar")
			got, err := readAll(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("read %d nodes, want %d", len(got), len(tt.want))
			}
			for i, g := range got {
				w := tt.want[i]
				w.Offset = g.Offset // checked below against the bytes
				if g != w {
					t.Errorf("node %d:\n got %#v\nwant %#v", i, g, w)
				}
				if g.Type == TypeRegular && string(data[g.Offset:g.Offset+g.Size]) != g.Contents {
					t.Errorf("%q: Offset %d does not point at its contents", g.Path, g.Offset)
				}
			}
		})
	}
}

func TestReaderOffsetAndRead(t *testing.T) {
	data := golden(t, "file.nar")
	r := NewReader(bytes.NewReader(data))
	if r.Offset() != 0 {
		t.Fatalf("Offset before reading = %d", r.Offset())
	}
	if n, err := r.Read(make([]byte, 4)); n != 0 || err != io.EOF {
		t.Fatalf("Read before Next = %d, %v; want 0, EOF", n, err)
	}
	h, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	if h.Offset != 96 || r.Offset() != 96 {
		t.Fatalf("header Offset %d, reader Offset %d; want 96 (observed narOffset)", h.Offset, r.Offset())
	}
	p := make([]byte, 2)
	if n, err := r.Read(p); n != 2 || err != nil || string(p) != "he" {
		t.Fatalf("Read = %d, %v, %q", n, err, p)
	}
	if r.Offset() != 98 {
		t.Fatalf("Offset after 2 bytes = %d, want 98", r.Offset())
	}
	// Next skips the rest of the contents and checks the end.
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("Next = %v, want io.EOF", err)
	}
	if r.Offset() != int64(len(data)) {
		t.Fatalf("Offset at EOF = %d, want %d", r.Offset(), len(data))
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("Next after EOF = %v, want io.EOF", err)
	}
	if n, err := r.Read(p); n != 0 || err != io.EOF {
		t.Fatalf("Read after EOF = %d, %v", n, err)
	}
}

// TestReaderSkip reads every node without reading contents.
func TestReaderSkip(t *testing.T) {
	data := golden(t, "tree.nar")
	want, err := readAll(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	r := NewReader(bytes.NewReader(data))
	for i := 0; ; i++ {
		h, err := r.Next()
		if err == io.EOF {
			if i != len(want) {
				t.Fatalf("EOF after %d nodes, want %d", i, len(want))
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if *h != want[i].Header {
			t.Fatalf("node %d = %#v, want %#v", i, *h, want[i].Header)
		}
	}
}

// TestReaderChunking reads through readers that split, delay and merge
// their results differently: the outcome must not change.
func TestReaderChunking(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 40000) // 640000 bytes, above the buffer size
	data := mk(magic, dir(ent("a", file(big)...), ent("b", file("tail")...)))
	want, err := readAll(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 3 || want[1].Contents != big {
		t.Fatalf("unexpected read of the sample: %d nodes", len(want))
	}
	readers := map[string]func() io.Reader{
		"one byte":  func() io.Reader { return iotest.OneByteReader(bytes.NewReader(data)) },
		"half":      func() io.Reader { return iotest.HalfReader(bytes.NewReader(data)) },
		"data+EOF":  func() io.Reader { return iotest.DataErrReader(bytes.NewReader(data)) },
		"plain":     func() io.Reader { return &failingReader{data: data, err: io.EOF} },
		"multi-EOF": func() io.Reader { return io.MultiReader(bytes.NewReader(data[:7]), bytes.NewReader(data[7:])) },
	}
	for name, mkReader := range readers {
		t.Run(name, func(t *testing.T) {
			got, err := readAll(mkReader())
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("%d nodes, want %d", len(got), len(want))
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("node %d differs: %q", i, got[i].Path)
				}
			}
		})
	}
}

// TestReaderPathLimit checks the bound on a node's path (MaxPath), which
// is the only bound on nesting.
func TestReaderPathLimit(t *testing.T) {
	tests := []struct {
		name  string
		nar   []byte
		depth int // of the deepest node; 0 for an invalid archive
	}{
		// The leaf's depth is levels+1 (levels for an empty directory);
		// its path is twice as many bytes.
		{"file at depth 64, past Nix 2.34's limit", mk(magic, nested(63, file("x"))), 64},
		{"file at depth 2047, path of 4094 bytes", mk(magic, nested(deepest, file("x"))), deepest + 1},
		{"directory at depth 2047", mk(magic, nested(deepest+1, nil)), deepest + 1},
		{"file at depth 2048, path of 4096 bytes", mk(magic, nested(deepest+1, file("x"))), 0},
		{"directory at depth 2048", mk(magic, nested(deepest+2, nil)), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readAll(bytes.NewReader(tt.nar))
			if tt.depth > 0 {
				if err != nil {
					t.Fatal(err)
				}
				if last := got[len(got)-1].Path; strings.Count(last, "/") != tt.depth {
					t.Fatalf("deepest node %.80q... at depth %d", last, strings.Count(last, "/"))
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "longer than 4095 bytes") {
				t.Fatalf("err = %v, want ErrInvalid for the path's length", err)
			}
		})
	}
}

// TestReaderTruncated cuts a real NAR at every length: every prefix must be
// rejected as truncated.
func TestReaderTruncated(t *testing.T) {
	data := golden(t, "tree.nar")
	for n := range len(data) {
		_, err := readAll(bytes.NewReader(data[:n]))
		if !errors.Is(err, ErrInvalid) || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("prefix of %d bytes: err = %v, want ErrInvalid and ErrUnexpectedEOF", n, err)
		}
	}
}

// TestReaderSourceErrors checks that failures of the underlying reader are
// returned, wrapped, and are not ErrInvalid, wherever they strike.
func TestReaderSourceErrors(t *testing.T) {
	data := golden(t, "tree.nar")
	for _, n := range []int{0, 3, 8, 100, 1000, len(data) - 8, len(data)} {
		_, err := readAll(&failingReader{data: data[:n], err: errBoom})
		if !errors.Is(err, errBoom) || errors.Is(err, ErrInvalid) {
			t.Errorf("failure after %d bytes: err = %v, want errBoom and not ErrInvalid", n, err)
		}
	}
	// In the middle of contents that Read streams straight into the caller's buffer.
	big := mk(magic, file(strings.Repeat("x", 3*bufSize)))
	r := NewReader(&failingReader{data: big[:bufSize], err: errBoom})
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	_, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, make([]byte, 2*bufSize))
	if !errors.Is(err, errBoom) || errors.Is(err, ErrInvalid) {
		t.Errorf("failure in contents: err = %v", err)
	}
	if _, err2 := r.Next(); !errors.Is(err2, errBoom) {
		t.Errorf("Next after a failed Read = %v, want the same error", err2)
	}
	// A reader that makes no progress is an I/O failure, not a format error.
	_, err = readAll(&failingReader{data: nil, err: nil})
	if !errors.Is(err, io.ErrNoProgress) || errors.Is(err, ErrInvalid) {
		t.Errorf("stalled reader: err = %v", err)
	}
	// A short body reported by the transport is a truncated archive.
	_, err = readAll(&failingReader{data: data[:100], err: io.ErrUnexpectedEOF})
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("io.ErrUnexpectedEOF from the source: err = %v, want ErrInvalid", err)
	}
}
