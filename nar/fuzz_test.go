package nar

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"
)

// FuzzReader checks that the Reader never panics, that the outcome does not
// depend on how the input is split into reads, that a NAR it accepts is in
// canonical form (Writer reproduces it byte for byte) with Offsets pointing
// at the contents, and that its listing can be written.
func FuzzReader(f *testing.F) {
	for _, name := range goldenNARs {
		data := golden(f, name+".nar")
		f.Add(data)
		for _, n := range []int{len(data) - 1, len(data) - 8, len(data) / 2, 40} {
			if n > 0 && n < len(data) {
				f.Add(data[:n])
			}
		}
	}
	f.Add(mk(magic, "(", "type", "regular", "executable", "", "contents", "#!/bin/sh\n", ")"))
	f.Add(mk(magic, dir(ent("a", dir()...), ent("b", "(", "type", "symlink", "target", "a", ")"))))
	f.Add(mk(magic, nested(100, file("x"))))
	f.Add(mk(magic, nested(deepest+1, file("x"))))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := readAll(bytes.NewReader(data))
		_, err2 := readAll(&chunkReader{data: data, n: 5})
		if (err == nil) != (err2 == nil) || err != nil && err.Error() != err2.Error() {
			t.Fatalf("whole reads: %v; 5-byte reads: %v", err, err2)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("in-memory input gave a non-format error: %v", err)
			}
			return
		}
		for _, e := range entries {
			if e.Type == TypeRegular && string(data[e.Offset:e.Offset+e.Size]) != e.Contents {
				t.Fatalf("%q: Offset %d does not point at its contents", e.Path, e.Offset)
			}
		}
		out, err := rewrite(entries)
		if err != nil {
			t.Fatalf("Writer rejects what Reader accepted: %v", err)
		}
		if !bytes.Equal(out, data) {
			t.Fatalf("re-written NAR differs: %d bytes, input %d", len(out), len(data))
		}
		var ls bytes.Buffer
		if err := WriteListing(&ls, bytes.NewReader(data)); err != nil {
			t.Fatalf("WriteListing: %v", err)
		}
		if utf8.Valid(ls.Bytes()) && !json.Valid(ls.Bytes()) {
			t.Fatalf("listing is not JSON: %s", ls.Bytes())
		}
	})
}
