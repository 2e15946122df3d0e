package storepath

import (
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nix-cached/cached/internal/nixtest"
	"github.com/nix-cached/cached/nixhash"
)

func mustHash(t *testing.T, s string) nixhash.Hash {
	t.Helper()
	h, err := nixhash.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestMakeFixedOutputGolden uses paths made by Nix 2.8.0 (nix-store --add,
// --add-fixed) with hashes from nix-hash and sha256sum.
func TestMakeFixedOutputGolden(t *testing.T) {
	tests := []struct {
		recursive bool
		hash      string
		name      string
		want      string
	}{
		// nix-store --add hello.txt ("hello\n"); nix-hash --type sha256 of the path
		{true, "sha256:1c37d01af40be2e80691de3cc3df44377a699afbb17c68f080964b2fd071fc13",
			"hello.txt", "i9pmrzmpshapij2kin22pff6fc2adavx-hello.txt"},
		// nix-store --add srcdir (a file "a" and a symlink)
		{true, "sha256:a993d78459344f6fdbf22aceb255a85d17fde5ada476d221025476a447d37049",
			"srcdir", "8g82vchxsp9693iimwfgmna2389x9yzw-srcdir"},
		// nix-store --add-fixed sha256 hello.txt; sha256sum hello.txt
		{false, "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03",
			"hello.txt", "gy454w1cxaq731grqwylhzf4pp9r5izh-hello.txt"},
		// nix-store --add-fixed --recursive sha1 srcdir; nix-hash --type sha1 srcdir
		{true, "sha1:4082a663687c5f901987cd2b942cae9d6a352c06",
			"srcdir", "rmx189yk26jc76likx4d9k2rkja2xsm5-srcdir"},
	}
	for _, tt := range tests {
		p, err := MakeFixedOutput(DefaultStoreDir, tt.recursive, mustHash(t, tt.hash), tt.name)
		if err != nil || p.Base() != tt.want {
			t.Errorf("MakeFixedOutput(%v, %s, %q) = %v, %v; want %s", tt.recursive, tt.hash, tt.name, p, err, tt.want)
		}
	}
}

// TestMakeTextGolden uses builtins.toFile paths made by Nix 2.8.0.
func TestMakeTextGolden(t *testing.T) {
	a, err := MakeText(DefaultStoreDir, sha256.Sum256([]byte("x")), "a.txt", nil)
	if err != nil || a.Base() != "yxgc0j5fvmcrm1g6ycn7wsb5jlzsmi5f-a.txt" {
		t.Fatalf("MakeText(a.txt) = %v, %v", a, err)
	}
	content := "ref " + a.Absolute(DefaultStoreDir)
	b, err := MakeText(DefaultStoreDir, sha256.Sum256([]byte(content)), "b.txt", []string{a.Base(), a.Base()})
	if err != nil || b.Base() != "a0s31l9rfpgj3kn1ka98slj9j7pcgp56-b.txt" {
		t.Fatalf("MakeText(b.txt) = %v, %v", b, err)
	}
}

func TestMakeStorePathDependsOnEveryInput(t *testing.T) {
	var d [32]byte
	base := MakeStorePath("/nix/store", "source", d, "x")
	d2 := d
	d2[31] = 1
	variants := []Path{
		MakeStorePath("/nix/store2", "source", d, "x"),
		MakeStorePath("/nix/store", "text", d, "x"),
		MakeStorePath("/nix/store", "source", d2, "x"),
		MakeStorePath("/nix/store", "source", d, "y"),
	}
	for i, v := range variants {
		if v.Hash == base.Hash {
			t.Errorf("variant %d has the same hash part %s", i, v.Hash)
		}
		if err := ValidateHashPart(v.Hash); err != nil {
			t.Errorf("variant %d: %v", i, err)
		}
	}
}

func TestMakeReject(t *testing.T) {
	h := mustHash(t, "sha256:1c37d01af40be2e80691de3cc3df44377a699afbb17c68f080964b2fd071fc13")
	if _, err := MakeFixedOutput("/nix/store/", true, h, "x"); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad store dir: %v", err)
	}
	if _, err := MakeFixedOutput("/nix/store", true, h, "a/b"); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad name: %v", err)
	}
	if _, err := MakeFixedOutput("/nix/store", true, nixhash.Hash{}, "x"); !errors.Is(err, ErrInvalid) {
		t.Errorf("zero hash: %v", err)
	}
	if _, err := MakeText("/nix/store", [32]byte{}, "x", []string{"not-a-path"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad reference: %v", err)
	}
}

// TestMakeAgainstNix adds fresh files to the real store and recomputes
// their paths. It runs with every installed Nix client.
func TestMakeAgainstNix(t *testing.T) { nixtest.Each(t, testMakeAgainstNix) }

// testMakeAgainstNix is TestMakeAgainstNix with one Nix client.
func testMakeAgainstNix(t *testing.T, nix *nixtest.Nix) {
	c := nix.New(t)
	n := nixtest.Nonce()
	dir := t.TempDir()
	file := filepath.Join(dir, "file-"+n+".txt")
	if err := os.WriteFile(file, []byte("content "+n+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tree := filepath.Join(dir, "tree-"+n)
	if err := os.MkdirAll(filepath.Join(tree, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "sub", "x"), []byte(n), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("sub/x", filepath.Join(tree, "link")); err != nil {
		t.Fatal(err)
	}
	flat := sha256.Sum256([]byte("content " + n + "\n"))

	tests := []struct {
		what      string
		args      []string
		recursive bool
		hash      func(added string) nixhash.Hash
	}{
		{"add file", []string{"--add", file}, true, func(p string) nixhash.Hash {
			return mustHash(t, "sha256:"+strings.TrimSpace(c.Run("nix-hash", "--type", "sha256", p)))
		}},
		{"add dir", []string{"--add", tree}, true, func(p string) nixhash.Hash {
			return mustHash(t, "sha256:"+strings.TrimSpace(c.Run("nix-hash", "--type", "sha256", p)))
		}},
		{"add-fixed flat", []string{"--add-fixed", "sha256", file}, false, func(string) nixhash.Hash {
			return nixhash.NewSHA256(flat)
		}},
		{"add-fixed recursive sha512", []string{"--add-fixed", "--recursive", "sha512", tree}, true,
			func(p string) nixhash.Hash {
				return mustHash(t, "sha512:"+strings.TrimSpace(c.Run("nix-hash", "--type", "sha512", p)))
			}},
	}
	for _, tt := range tests {
		added := strings.TrimSpace(c.Run("nix-store", tt.args...))
		want, err := Parse(DefaultStoreDir, added)
		if err != nil {
			t.Fatalf("%s: %v", tt.what, err)
		}
		got, err := MakeFixedOutput(DefaultStoreDir, tt.recursive, tt.hash(added), want.Name)
		if err != nil || got != want {
			t.Errorf("%s: MakeFixedOutput = %v, %v; Nix made %v", tt.what, got, err, want)
		}
	}

	expr := `let a = builtins.toFile "a-` + n + `" "` + n + `"; in [ a (builtins.toFile "b-` + n + `" "see ${a}") ]`
	out := c.Run("nix-instantiate", "--read-write-mode", "--eval", "--strict", "-E", expr)
	fields := strings.Fields(strings.Trim(strings.TrimSpace(out), "[]"))
	if len(fields) != 2 {
		t.Fatalf("nix-instantiate printed %q", out)
	}
	a, errA := Parse(DefaultStoreDir, strings.Trim(fields[0], `"`))
	b, errB := Parse(DefaultStoreDir, strings.Trim(fields[1], `"`))
	if errA != nil || errB != nil {
		t.Fatalf("nix-instantiate printed %q: %v %v", out, errA, errB)
	}
	gotA, err := MakeText(DefaultStoreDir, sha256.Sum256([]byte(n)), a.Name, nil)
	if err != nil || gotA != a {
		t.Errorf("MakeText(a) = %v, %v; Nix made %v", gotA, err, a)
	}
	gotB, err := MakeText(DefaultStoreDir, sha256.Sum256([]byte("see "+a.Absolute(DefaultStoreDir))), b.Name, []string{a.Base()})
	if err != nil || gotB != b {
		t.Errorf("MakeText(b) = %v, %v; Nix made %v", gotB, err, b)
	}
}
