package nar

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/nix-cached/cached/internal/nixtest"
)

// treeScript builds a store path with every kind of node and awkward names.
// It runs inside a Nix indented string, so it must not contain two single quotes
// in a row or a dollar sign followed by a brace.
const treeScript = `
mkdir -p $out/bin $out/empty-dir $out/sub/deeper
printf '#!/bin/sh\necho hello\n' > $out/bin/x
chmod +x $out/bin/x
: > $out/empty
: > $out/empty-exec
chmod +x $out/empty-exec
ln -s /nix/store/0rm3pvqy4sikbwkvg5py1msvar18859y-a $out/link
ln -s bin/x $out/rel-link
ln -s "$(printf 'odd \"target\"\\\001 é')" $out/sub/odd-link
head -c 6291459 /dev/urandom > $out/big
printf '1234567' > $out/sub/seven
printf '12345678' > $out/sub/deeper/eight
echo one > $out/Zcap
echo two > $out/a.txt
echo q > "$out/with \"quote\""
echo b > "$out/back\\slash"
echo s > "$out/sp ace"
echo n > "$out/new
line"
echo t > "$out/$(printf 'tab\tx')"
echo c > "$out/$(printf 'a\001b')"
echo d > "$out/$(printf 'ctl\002\010\014\015\037\177')"
echo u > "$out/utf8-é日本"
echo i > "$out/$(printf 'bad\377utf8')"
echo l > "$out/$(printf '%0255d' 0)"
d=$out/deep
for i in $(seq 61); do d=$d/d; done
mkdir -p $d
echo deep > $d/f
`

// nonUTF8Line is the line of treeScript that makes its one file name that
// is not valid UTF-8.
const nonUTF8Line = `echo i > "$out/$(printf 'bad\377utf8')"` + "\n"

// TestInteropNix checks the codec against real Nix: for store paths with a
// directory, a regular file and a symlink as root, the Reader agrees with
// the file system, the Writer reproduces nix-store --dump byte for byte, and
// WriteListing reproduces the .ls file that nix copy writes. It runs with
// every installed Nix client.
//
// Nix 2.34 cannot write the listing of a file name that is not UTF-8 (its
// JSON library refuses it; Nix 2.8 and WriteListing copy the bytes): with
// it, copying the tree with its listing must fail that way, and listings
// are compared on the same tree without that name, built for every client.
func TestInteropNix(t *testing.T) { nixtest.Each(t, testInteropNix) }

// testInteropNix is TestInteropNix with one Nix client.
func testInteropNix(t *testing.T, nix *nixtest.Nix) {
	c := nix.New(t)
	n := nixtest.Nonce()
	utf8Tree := strings.Replace(treeScript, nonUTF8Line, "", 1)
	if utf8Tree == treeScript {
		t.Fatal("treeScript has no nonUTF8Line")
	}
	names := []string{"directory", "directory-utf8", "regular", "symlink"}
	outs := c.Build("[ (" +
		nixtest.Derivation("nar-tree-"+n, "set -e\n"+treeScript+"echo "+n+" > $out/nonce\n") + ") (" +
		nixtest.Derivation("nar-tree-utf8-"+n, "set -e\n"+utf8Tree+"echo "+n+" > $out/nonce\n") + ") (" +
		nixtest.Derivation("nar-file-"+n, "echo "+n+" > $out") + ") (" +
		nixtest.Derivation("nar-link-"+n, "ln -s /nix/store/"+n+" $out") + ") ]")
	if len(outs) != len(names) {
		t.Fatalf("nix-build printed %v", outs)
	}
	cache := t.TempDir()
	store := "file://" + cache + "?compression=none&write-nar-listing=1"
	c.Run("nix", append([]string{"copy", "--to", store}, outs[1:]...)...)
	_, stderr, err := c.Try("nix", "copy", "--to", store, outs[0])
	listsNonUTF8 := !nix.AtLeast(2, 34)
	switch {
	case listsNonUTF8 && err != nil:
		t.Fatalf("nix copy of the tree with its listing: %v\n%s", err, stderr)
	case !listsNonUTF8 && (err == nil || !strings.Contains(stderr, "invalid UTF-8")):
		t.Fatalf("nix copy of the tree with its listing: %v, want Nix's invalid UTF-8 error\n%s", err, stderr)
	}
	for i, out := range outs {
		t.Run(names[i], func(t *testing.T) {
			data := []byte(c.Run("nix-store", "--dump", out))
			got, err := readAll(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			want := walkStore(t, c.Path(out))
			if len(got) != len(want) {
				t.Fatalf("read %d nodes, the file system has %d", len(got), len(want))
			}
			for j, g := range got {
				w := want[j]
				w.Offset = g.Offset
				if g != w {
					t.Fatalf("node %d:\n got %.200q\nwant %.200q", j, g.Path, w.Path)
				}
				if g.Type == TypeRegular && !bytes.Equal(data[g.Offset:g.Offset+g.Size], []byte(g.Contents)) {
					t.Fatalf("%q: Offset %d does not point at its contents", g.Path, g.Offset)
				}
			}
			t.Logf("%s: %d nodes, %d-byte NAR", out, len(got), len(data))
			if i < 2 && len(got) < 80 {
				t.Fatalf("only %d nodes in the tree", len(got))
			}

			again, err := rewrite(got)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, data) {
				t.Fatalf("re-written NAR differs from nix-store --dump (%d vs %d bytes)", len(again), len(data))
			}

			if i == 0 && !listsNonUTF8 {
				return // no listing: see above
			}
			ls, err := os.ReadFile(filepath.Join(cache, filepath.Base(out)[:32]+".ls"))
			if err != nil {
				t.Fatal(err)
			}
			var listing bytes.Buffer
			if err := WriteListing(&listing, bytes.NewReader(data)); err != nil {
				t.Fatal(err)
			}
			if !sameListing(t, nix, listing.Bytes(), ls) {
				t.Fatalf("listing differs from Nix's .ls:\n got %.2000s\nwant %.2000s", listing.Bytes(), ls)
			}
		})
	}
}

// sameListing tells whether a listing from WriteListing matches the .ls
// file that nix writes. Nix 2.8 writes the members in WriteListing's order
// and escapes as it does, so the bytes must be equal. Nix 2.34 writes the
// same JSON differently (members sorted by name, "\b" and "\f" for
// "\u0008" and "\u000c"), which every JSON reader takes as the same value:
// with it, the decoded values must be equal.
func sameListing(t *testing.T, nix *nixtest.Nix, got, nixLs []byte) bool {
	t.Helper()
	if !nix.AtLeast(2, 34) {
		return bytes.Equal(got, nixLs)
	}
	return reflect.DeepEqual(decodeJSON(t, got), decodeJSON(t, nixLs))
}

// decodeJSON decodes one JSON value, numbers kept as written.
func decodeJSON(t *testing.T, data []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("listing %.200q: %v", data, err)
	}
	if d.More() {
		t.Fatalf("listing %.200q: more than one JSON value", data)
	}
	return v
}

// deepDerivation is a derivation whose output holds a file below dirs
// nested directories.
func deepDerivation(n string, dirs int) string {
	return nixtest.Derivation("nar-deep-"+strconv.Itoa(dirs)+"-"+n,
		"d=$out; for i in $(seq "+strconv.Itoa(dirs)+"); do d=$d/d; done; mkdir -p $d; echo "+n+" > $d/f")
}

// TestInteropDeep checks that the Reader takes what Nix 2.8 builds and
// dumps nested deeper than Nix 2.34's limit of 64 directories: a file 100
// directories deep is read whole. Nix 2.34 refuses to build it. It runs
// with every installed Nix client.
func TestInteropDeep(t *testing.T) { nixtest.Each(t, testInteropDeep) }

// testInteropDeep is TestInteropDeep with one Nix client.
func testInteropDeep(t *testing.T, nix *nixtest.Nix) {
	c := nix.New(t)
	n := nixtest.Nonce()
	f := filepath.Join(t.TempDir(), "default.nix")
	if err := os.WriteFile(f, []byte(deepDerivation(n, 100)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := c.Try("nix-build", "--no-out-link", f)
	if nix.AtLeast(2, 34) {
		if want := "exceeds maximum NAR directory depth of 64"; err == nil || !strings.Contains(stderr, want) {
			t.Fatalf("nix-build of a file 101 levels deep: %v, want an error %q\n%s", err, want, stderr)
		}
		return
	}
	if err != nil {
		t.Fatalf("nix-build: %v\n%s", err, stderr)
	}
	data := []byte(c.Run("nix-store", "--dump", strings.TrimSpace(out)))
	got, err := readAll(bytes.NewReader(data))
	if err != nil || len(got) != 102 {
		t.Fatalf("read %d nodes, %v; want 101 directories and a file", len(got), err)
	}
	if want := strings.Repeat("/d", 100) + "/f"; got[101].Path != want || got[101].Contents != n+"\n" {
		t.Fatalf("deepest node %q %q", got[101].Path, got[101].Contents)
	}
}

// walkStore lists a store path as the entries a Reader should return.
func walkStore(t *testing.T, root string) []entry {
	t.Helper()
	var out []entry
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		path := strings.TrimPrefix(p, root)
		if path == "" {
			path = "/"
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		e := entry{Header: Header{Path: path}}
		switch mode := info.Mode(); {
		case mode.IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			e.Type, e.Executable, e.Size, e.Contents = TypeRegular, mode&0o100 != 0, int64(len(b)), string(b)
		case mode.IsDir():
			e.Type = TypeDirectory
		case mode&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			e.Type, e.LinkTarget = TypeSymlink, target
		default:
			t.Fatalf("%s: unexpected mode %v", p, mode)
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
