package nar

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// TestReaderInvalid holds one hand-made NAR per rejection rule. Each must
// fail with ErrInvalid and a one-line message naming the rule and an offset.
func TestReaderInvalid(t *testing.T) {
	reg := []any{"(", "type", "regular"}
	sym := []any{"(", "type", "symlink"}
	tests := []struct {
		name string
		nar  []byte
		want string // in the error message
	}{
		{"empty input", nil, "truncated at byte 0"},
		{"wrong magic", mk("nix-archive-2", file("x")), `wrong magic "nix-archive-2"`},
		{"hostile magic length", mk(u64(1<<62), raw("nix-archive-1")), "magic of 4611686018427387904 bytes exceeds the limit of 32"},
		{"missing open tag", mk(magic, "type", "regular", "contents", "", ")"), `expected tag "(", got "type" at byte 24`},
		{"type not first", mk(magic, "(", "contents", "", ")"), `expected tag "type", got "contents" at byte 40`},
		{"second type", mk(magic, reg, "type", "regular", "contents", "", ")"), `expected tag "contents", got "type"`},
		{"unknown type", mk(magic, "(", "type", "fifo", ")"), `unknown file type "fifo" at byte 56`},
		{"unknown regular tag", mk(magic, reg, "size", u64(0), ")"), `expected tag "contents", got "size"`},
		{"regular without contents", mk(magic, reg, ")"), `expected tag "contents", got ")"`},
		{"executable with a value", mk(magic, reg, "executable", "1", "contents", "", ")"), "executable marker has a non-empty value at byte 96"},
		{"executable after contents", mk(magic, reg, "contents", "x", "executable", "", ")"), `expected tag ")", got "executable"`},
		{"executable twice", mk(magic, reg, "executable", "", "executable", "", "contents", "", ")"), `expected tag "contents", got "executable"`},
		{"contents size out of range", mk(magic, reg, "contents", u64(1<<63)), "contents size 9223372036854775808 out of range at byte 88"},
		{"non-zero contents padding", mk(magic, reg, "contents", u64(1), raw("x\x00\x00\x01\x00\x00\x00\x00"), ")"), "non-zero padding after contents at byte 97"},
		{"non-zero tag padding", mk(magic, u64(1), raw("(\x00\x00\x00\x00\x00\x00\x01"), "type", "regular", "contents", "", ")"), "non-zero padding after tag at byte 33"},
		{"tag too long", mk(magic, "(", strings.Repeat("t", 33)), "tag of 33 bytes exceeds the limit of 32 at byte 40"},
		{"hostile tag length", mk(magic, "(", u64(1<<60)), "tag of 1152921504606846976 bytes exceeds the limit of 32"},
		{"unknown directory tag", mk(magic, "(", "type", "directory", "file", ")"), `expected tag "entry" or ")", got "file"`},
		{"entry without open tag", mk(magic, "(", "type", "directory", "entry", "name", "a"), `expected tag "(", got "name"`},
		{"entry without name", mk(magic, "(", "type", "directory", "entry", "(", "node", file("x"), ")", ")"), `expected tag "name", got "node"`},
		{"entry without node", mk(magic, "(", "type", "directory", "entry", "(", "name", "a", ")", ")"), `expected tag "node", got ")"`},
		{"entry with extra tag", mk(magic, "(", "type", "directory", "entry", "(", "name", "a", "node", file("x"), "node"), `expected tag ")", got "node"`},
		{"empty name", mk(magic, dir(ent("", file("x")...))), `empty entry name: "" at byte 128`},
		{"name .", mk(magic, dir(ent(".", file("x")...))), `entry name is . or ..: "."`},
		{"name ..", mk(magic, dir(ent("..", file("x")...))), `entry name is . or ..: ".."`},
		{"name with slash", mk(magic, dir(ent("a/b", file("x")...))), `entry name contains a slash: "a/b"`},
		{"name with NUL", mk(magic, dir(ent("a\x00b", file("x")...))), `entry name contains a NUL byte: "a\x00b"`},
		{"name of 256 bytes", mk(magic, dir(ent(strings.Repeat("n", 256), file("x")...))), "entry name of 256 bytes exceeds the limit of 255 at byte 128"},
		{"hostile name length", mk(magic, "(", "type", "directory", "entry", "(", "name", u64(1<<62)), "entry name of 4611686018427387904 bytes exceeds the limit of 255"},
		{"unsorted names", mk(magic, dir(ent("b", file("x")...), ent("a", file("x")...))), `entry "a" not strictly after "b"`},
		{"duplicate names", mk(magic, dir(ent("a", file("x")...), ent("a", file("y")...))), `entry "a" not strictly after "a"`},
		{"names sorted by case, not bytes", mk(magic, dir(ent("a", file("x")...), ent("Z", file("y")...))), `entry "Z" not strictly after "a"`},
		{"empty symlink target", mk(magic, sym, "target", "", ")"), "empty symlink target at byte 88"},
		{"symlink target with NUL", mk(magic, sym, "target", "a\x00", ")"), "symlink target contains a NUL byte"},
		{"symlink target of 4096 bytes", mk(magic, sym, "target", strings.Repeat("t", 4096), ")"), "symlink target of 4096 bytes exceeds the limit of 4095"},
		{"hostile symlink target length", mk(magic, sym, "target", u64(1<<50)), "symlink target of 1125899906842624 bytes exceeds the limit of 4095"},
		{"symlink without target", mk(magic, sym, ")"), `expected tag "target", got ")"`},
		{"symlink with extra tag", mk(magic, sym, "target", "a", "target", "b", ")"), `expected tag ")", got "target"`},
		{"path of 4096 bytes", mk(magic, nested(deepest+1, file("x"))), "longer than 4095 bytes"},
		{"trailing byte", mk(magic, file("x"), raw("x")), "trailing bytes after the root node at byte 120"},
		{"trailing close tag", mk(magic, file("x"), ")"), "trailing bytes after the root node at byte 120"},
		{"trailing after directory", mk(magic, dir(), u64(0)), "trailing bytes after the root node"},
		{"truncated contents", mk(magic, reg, "contents", u64(100), raw("short")), "truncated at byte 101"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readAll(bytes.NewReader(tt.nar))
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) {
				t.Errorf("err = %q, want it to contain %q", msg, tt.want)
			}
			if !strings.Contains(msg, " at byte ") || strings.ContainsAny(msg, "\n\x00") {
				t.Errorf("err = %q: want one line with a byte offset", msg)
			}
			// The rule must hold whatever the read sizes.
			_, err2 := readAll(&chunkReader{data: tt.nar, n: 3})
			if err2 == nil || err2.Error() != msg {
				t.Errorf("in 3-byte reads err = %v, want %q", err2, msg)
			}
		})
	}
}

// chunkReader returns at most n bytes a call.
type chunkReader struct {
	data []byte
	n    int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.n)], c.data)
	c.data = c.data[n:]
	return n, nil
}
