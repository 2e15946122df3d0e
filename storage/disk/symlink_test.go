package disk

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nix-cached/cached/storage"
)

// TestSymlinkEscape plants symbolic links inside the root that point
// outside it, and checks that no key reads, writes, lists or deletes
// anything out there.
func TestSymlinkEscape(t *testing.T) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	// outside/<shard>/x mirrors the layout, so that a store following the
	// "nar" link would find nar/x there.
	mirror := filepath.Join(outside, fnvShard("x"), "x")
	if err := os.MkdirAll(filepath.Dir(mirror), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mirror, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}

	root := t.TempDir()
	s := newStore(t, root)
	plant := func(link, target string) {
		t.Helper()
		p := filepath.Join(root, filepath.FromSlash(link))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	plant("nar", outside)                                    // absolute directory link
	plant("log", "../"+filepath.Base(outside))               // relative, if TempDirs share a parent
	plant("rel", strings.Repeat("../", 20)+outside[1:])      // relative via many ".."
	plant(fnvShard("leak")+"/leak", secret)                  // a key's own file
	plant("sub/"+fnvShard("leak2")+"/leak2", "../../"+"../") // a file link to a directory above

	for _, key := range []string{"nar/x", "log/x", "rel/x", "leak", "sub/leak2"} {
		if r, err := s.Open(t.Context(), key); err == nil {
			b, _ := io.ReadAll(r)
			r.Close()
			t.Errorf("Open(%q) escaped the root and read %q", key, b)
		} else if !strings.Contains(err.Error(), key) {
			t.Errorf("Open(%q) error %q does not name the key", key, err)
		}
		if info, err := s.Stat(t.Context(), key); err == nil {
			t.Errorf("Stat(%q) escaped the root: %+v", key, info)
		}
		if _, err := storage.Put(t.Context(), s, key, strings.NewReader("overwrite")); err == nil && key != "leak" && key != "sub/leak2" {
			t.Errorf("Put(%q) through a link out of the root succeeded", key)
		}
	}
	// Writing "leak" may replace the link itself, inside the root; it must
	// not write through it.
	for _, p := range []string{secret, mirror} {
		if b, err := os.ReadFile(p); err != nil || string(b) != "secret" {
			t.Errorf("%s outside the root now holds %q, %v", p, b, err)
		}
	}
	if err := s.Delete(t.Context(), "nar/x"); err == nil {
		if _, err := os.Stat(mirror); err != nil {
			t.Errorf("Delete(nar/x) removed a file outside the root: %v", err)
		}
	}
	var listed []string
	if err := s.List(t.Context(), "", func(i storage.Info) error { listed = append(listed, i.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	for _, prefix := range []string{"nar/", "log/", "rel/"} {
		if err := s.List(t.Context(), prefix, func(i storage.Info) error { listed = append(listed, i.Key); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range listed {
		if k != "leak" && k != "sub/leak2" {
			t.Errorf("List followed a link out of the root to %q", k)
		}
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 2 {
		t.Errorf("outside the root now holds %d entries, want 2", len(entries))
	}
}

// TestSymlinkedTempDir refuses uploads when .tmp is a link out of the root.
func TestSymlinkedTempDir(t *testing.T) {
	outside, root := t.TempDir(), t.TempDir()
	if err := os.Symlink(outside, filepath.Join(root, tmpDir)); err != nil {
		t.Fatal(err)
	}
	s, err := New(root)
	if err == nil {
		defer s.Close()
		if _, err := storage.Put(t.Context(), s, "k", strings.NewReader("data")); err == nil {
			t.Error("Put succeeded with .tmp linked out of the root")
		}
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("the store wrote %d files outside its root", len(entries))
	}
}
