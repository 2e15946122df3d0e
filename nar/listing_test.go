package nar

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestListingGolden compares with the .ls files Nix 2.8 wrote.
func TestListingGolden(t *testing.T) {
	for _, name := range goldenNARs {
		t.Run(name, func(t *testing.T) {
			var got bytes.Buffer
			if err := WriteListing(&got, bytes.NewReader(golden(t, name+".nar"))); err != nil {
				t.Fatal(err)
			}
			if want := golden(t, name+".ls"); !bytes.Equal(got.Bytes(), want) {
				t.Fatalf("listing differs:\n got %s\nwant %s", got.Bytes(), want)
			}
		})
	}
}

// TestListingShapes checks each node form against the output observed from
// Nix 2.8 (protocol.md §6 and the brief).
func TestListingShapes(t *testing.T) {
	tests := []struct {
		name    string
		headers []Header
		want    string
	}{
		{"regular root", []Header{{Path: "/", Type: TypeRegular, Size: 6, Offset: 96}},
			`{"version":1,"root":{"type":"regular","size":6,"narOffset":96}}`},
		{"observed tree", []Header{
			{Path: "/", Type: TypeDirectory},
			{Path: "/bin", Type: TypeDirectory},
			{Path: "/bin/x", Type: TypeRegular, Executable: true, Size: 18, Offset: 400},
			{Path: "/link", Type: TypeSymlink, LinkTarget: "/nix/store/0rm3pvqy4sikbwkvg5py1msvar18859y-a"},
		}, `{"version":1,"root":{"type":"directory","entries":{"bin":{"type":"directory","entries":{"x":{"type":"regular","size":18,"executable":true,"narOffset":400}}},"link":{"type":"symlink","target":"/nix/store/0rm3pvqy4sikbwkvg5py1msvar18859y-a"}}}}`},
		{"zero offset omitted as Nix does", []Header{{Path: "/", Type: TypeRegular}},
			`{"version":1,"root":{"type":"regular","size":0}}`},
		{"empty directories", []Header{
			{Path: "/", Type: TypeDirectory},
			{Path: "/a", Type: TypeDirectory},
			{Path: "/a/b", Type: TypeDirectory},
			{Path: "/c", Type: TypeDirectory},
		}, `{"version":1,"root":{"type":"directory","entries":{"a":{"type":"directory","entries":{"b":{"type":"directory","entries":{}}}},"c":{"type":"directory","entries":{}}}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := NewListingWriter(&buf)
			for i := range tt.headers {
				if err := l.Add(&tt.headers[i]); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if buf.String() != tt.want {
				t.Fatalf("got  %s\nwant %s", buf.String(), tt.want)
			}
		})
	}
}

// TestJSONString checks the escaping of Nix 2.8's toJSON (src/libutil/json.cc).
func TestJSONString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `""`},
		{"plain", `"plain"`},
		{`q"uote`, `"q\"uote"`},
		{`back\slash`, `"back\\slash"`},
		{"sp ace", `"sp ace"`},
		{"new\nline", `"new\nline"`},
		{"cr\rx", `"cr\rx"`},
		{"tab\tx", `"tab\tx"`},
		{"a\x01b", `"a\u0001b"`},
		{"\x00\x08\x0c\x1f", `"\u0000\u0008\u000c\u001f"`},
		{"del\x7f", "\"del\x7f\""},
		{"utf8-é日本", `"utf8-é日本"`},
		{"bad\xff\xfe", "\"bad\xff\xfe\""},
		{"/<>&\u2028", "\"/<>&\u2028\""},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		bw := bufio.NewWriter(&buf)
		writeJSONString(bw, tt.in)
		if err := bw.Flush(); err != nil {
			t.Fatal(err)
		}
		if buf.String() != tt.want {
			t.Errorf("writeJSONString(%q) = %s, want %s", tt.in, buf.String(), tt.want)
		}
		if !utf8.ValidString(tt.in) {
			continue
		}
		var back string
		if err := json.Unmarshal(buf.Bytes(), &back); err != nil || back != tt.in {
			t.Errorf("writeJSONString(%q) = %s decodes to %q, %v", tt.in, buf.String(), back, err)
		}
	}
}

func TestListingRejects(t *testing.T) {
	l := NewListingWriter(&bytes.Buffer{})
	if err := l.Close(); !errors.Is(err, ErrHeader) {
		t.Fatalf("Close with no root = %v, want ErrHeader", err)
	}
	for _, h := range []Header{
		{Path: "/a", Type: TypeDirectory},
		{Path: "/", Type: TypeSymlink},
	} {
		if err := l.Add(&h); !errors.Is(err, ErrHeader) {
			t.Fatalf("Add(%q) = %v, want ErrHeader", h.Path, err)
		}
	}
	if err := l.Add(&Header{Path: "/", Type: TypeDirectory}); err != nil {
		t.Fatal(err)
	}
	if err := l.Add(&Header{Path: "/b", Type: TypeRegular}); err != nil {
		t.Fatal(err)
	}
	if err := l.Add(&Header{Path: "/a", Type: TypeRegular}); !errors.Is(err, ErrHeader) {
		t.Fatalf("unsorted Add = %v, want ErrHeader", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Add(&Header{Path: "/c", Type: TypeRegular}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Add after Close = %v, want ErrClosed", err)
	}
}

func TestWriteListingErrors(t *testing.T) {
	err := WriteListing(&bytes.Buffer{}, bytes.NewReader(mk(magic, dir(ent("b", file("x")...), ent("a", file("y")...)))))
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("WriteListing of an invalid NAR = %v, want ErrInvalid", err)
	}
	err = WriteListing(&bytes.Buffer{}, &failingReader{data: golden(t, "tree.nar")[:200], err: errBoom})
	if !errors.Is(err, errBoom) || errors.Is(err, ErrInvalid) {
		t.Fatalf("WriteListing with a failing source = %v, want errBoom", err)
	}
	// A listing larger than the internal buffer, to a failing destination.
	var entries []any
	for i := range 2000 {
		entries = append(entries, ent(strings.Repeat("n", 20)+string(rune('a'+i/100%26))+string(rune('a'+i/10%10))+string(rune('a'+i%10)), file("")...))
	}
	data := mk(magic, "(", "type", "directory", entries, ")")
	if err := WriteListing(&failingWriter{n: 1000}, bytes.NewReader(data)); !errors.Is(err, errBoom) {
		t.Fatalf("WriteListing to a failing destination = %v, want errBoom", err)
	}
	var buf bytes.Buffer
	if err := WriteListing(&buf, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	var v struct {
		Version int
		Root    struct {
			Entries map[string]json.RawMessage
		}
	}
	if err := json.Unmarshal(buf.Bytes(), &v); err != nil || v.Version != 1 || len(v.Root.Entries) != 2000 {
		t.Fatalf("listing of 2000 entries: version %d, %d entries, %v", v.Version, len(v.Root.Entries), err)
	}
}
