package nar

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
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

// TestInteropNix checks the codec against real Nix: for store paths with a
// directory, a regular file and a symlink as root, the Reader agrees with
// the file system, the Writer reproduces nix-store --dump byte for byte, and
// WriteListing reproduces the .ls file that nix copy writes.
func TestInteropNix(t *testing.T) {
	c := nixtest.New(t)
	n := nixtest.Nonce()
	outs := c.Build("[ (" +
		nixtest.Derivation("nar-tree-"+n, "set -e\n"+treeScript+"echo "+n+" > $out/nonce\n") + ") (" +
		nixtest.Derivation("nar-file-"+n, "echo "+n+" > $out") + ") (" +
		nixtest.Derivation("nar-link-"+n, "ln -s /nix/store/"+n+" $out") + ") ]")
	if len(outs) != 3 {
		t.Fatalf("nix-build printed %v", outs)
	}
	cache := t.TempDir()
	c.Run("nix", append([]string{"copy", "--to", "file://" + cache + "?compression=none&write-nar-listing=1"}, outs...)...)
	for i, out := range outs {
		t.Run([]string{"directory", "regular", "symlink"}[i], func(t *testing.T) {
			data := []byte(c.Run("nix-store", "--dump", out))
			got, err := readAll(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			want := walkStore(t, out)
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
			if i == 0 && len(got) < 80 {
				t.Fatalf("only %d nodes in the tree", len(got))
			}

			again, err := rewrite(got)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, data) {
				t.Fatalf("re-written NAR differs from nix-store --dump (%d vs %d bytes)", len(again), len(data))
			}

			ls, err := os.ReadFile(filepath.Join(cache, filepath.Base(out)[:32]+".ls"))
			if err != nil {
				t.Fatal(err)
			}
			var listing bytes.Buffer
			if err := WriteListing(&listing, bytes.NewReader(data)); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(listing.Bytes(), ls) {
				t.Fatalf("listing differs from Nix's .ls:\n got %.2000s\nwant %.2000s", listing.Bytes(), ls)
			}
		})
	}
}

// TestInteropDepthLimit dumps, with Nix 2.8 (which has no limit), a file 64
// levels deep, which newer Nix and this Reader reject.
func TestInteropDepthLimit(t *testing.T) {
	c := nixtest.New(t)
	n := nixtest.Nonce()
	out := c.Build(nixtest.Derivation("nar-deep-"+n,
		"d=$out; for i in $(seq "+strconv.Itoa(MaxDepth-1)+"); do d=$d/d; done; mkdir -p $d; echo "+n+" > $d/f"))[0]
	data := []byte(c.Run("nix-store", "--dump", out))
	got, err := readAll(bytes.NewReader(data))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "nested 64 levels deep") {
		t.Fatalf("err = %v, want ErrInvalid for nesting", err)
	}
	if len(got) != MaxDepth {
		t.Fatalf("read %d nodes before the error, want the %d directories", len(got), MaxDepth)
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
