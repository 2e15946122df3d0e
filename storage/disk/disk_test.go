package disk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nix-cached/cached/storage"
	"github.com/nix-cached/cached/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store { return newStore(t, t.TempDir()) }, storagetest.Streaming())
}

func newStore(t *testing.T, root string) *Store {
	t.Helper()
	s, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func put(t *testing.T, s storage.Store, key, data string) {
	t.Helper()
	if _, err := storage.Put(t.Context(), s, key, strings.NewReader(data)); err != nil {
		t.Fatal(err)
	}
}

// files returns the regular files under root, relative and slash-separated.
func files(t *testing.T, root string) []string {
	t.Helper()
	var got []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		got = append(got, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	return got
}

// fnvShard computes the shard with hash/fnv, independently of shard.
func fnvShard(base string) string {
	h := fnv.New32a()
	h.Write([]byte(base))
	return fmt.Sprintf("%02x", h.Sum32()&0xff)
}

func TestLayout(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root)
	keys := []string{
		"nix-cache-info",
		"nar/0fmqhv6kapw15psla37l5i7r6qrvcb5ig6gkkyx7jhmg467ys7br.nar.zst",
		"realisations/sha256:ab12!out.doi",
		"a/b/c/d",
	}
	var want []string
	for _, k := range keys {
		put(t, s, k, k)
		dir, base := filepath.Split(k)
		want = append(want, dir+fnvShard(base)+"/"+base)
	}
	slices.Sort(want)
	if got := files(t, root); !slices.Equal(got, want) {
		t.Errorf("files under the root:\n%q\nwant\n%q", got, want)
	}
	// FNV-1a 32 of "abc.nar.zst" is 0xaa7bbbd3; of "nix-cache-info", 0xadf59d7a.
	for key, want := range map[string]string{"nar/abc.nar.zst": "nar/d3/abc.nar.zst", "nix-cache-info": "7a/nix-cache-info"} {
		if got := keyPath(key); got != want {
			t.Errorf("keyPath(%q) = %q, want %q", key, got, want)
		}
	}
	for _, k := range keys {
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(keyPath(k))))
		if err != nil || string(b) != k {
			t.Errorf("file of %q holds %q, %v", k, b, err)
		}
	}
	r, err := s.Open(t.Context(), keys[0])
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, ok := r.(*os.File); !ok {
		t.Errorf("Open returned %T, want *os.File for sendfile", r)
	}
}

// TestShardsMadeTogether checks that the first object under a directory
// creates all 256 of its shard directories, and that the root, whose
// shards hold the rare keys without a directory, gets only those it uses.
func TestShardsMadeTogether(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root)
	put(t, s, "nar/abc.nar.zst", "x")
	put(t, s, "nix-cache-info", "y")
	entries, err := os.ReadDir(filepath.Join(root, "nar"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 256 {
		t.Errorf("nar/ holds %d entries after one upload, want the 256 shards", len(entries))
	}
	for _, e := range entries {
		if !e.IsDir() || !isShardName(e.Name()) {
			t.Errorf("nar/%s: not a shard directory", e.Name())
		}
	}
	var shards []string
	rootEntries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range rootEntries {
		if isShardName(e.Name()) {
			shards = append(shards, e.Name())
		}
	}
	if want := []string{fnvShard("nix-cache-info")}; !slices.Equal(shards, want) {
		t.Errorf("shard directories at the root: %q, want %q", shards, want)
	}
	if got := files(t, root); !slices.Equal(got, []string{"7a/nix-cache-info", "nar/d3/abc.nar.zst"}) {
		t.Errorf("files: %q", got)
	}
}

// TestListIgnoresForeignFiles plants files that keyPath cannot produce.
func TestListIgnoresForeignFiles(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root)
	put(t, s, "nar/x.nar", "x")
	for _, p := range []string{
		"stray", "nar/stray", "nar/zz/x.nar", "nar/" + fnvShard("y") + "/sub/y",
		".hidden/" + fnvShard("h") + "/h", "nar/.h/" + fnvShard("h") + "/h",
	} {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte("foreign"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	if err := s.List(t.Context(), "", func(i storage.Info) error { got = append(got, i.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"nar/x.nar"}) {
		t.Errorf("List = %q, want only nar/x.nar", got)
	}
}

func TestStaleTempFiles(t *testing.T) {
	root := t.TempDir()
	tmp := filepath.Join(root, tmpDir)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	old, fresh := filepath.Join(tmp, "upload-old"), filepath.Join(tmp, "upload-fresh")
	for _, p := range []string{old, fresh} {
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	twoHoursAgo := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(old, twoHoursAgo, twoHoursAgo); err != nil {
		t.Fatal(err)
	}
	s := newStore(t, root)
	if _, err := os.Stat(old); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("temp file two hours old survived New: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("fresh temp file removed by New: %v", err)
	}
	var n int
	if err := s.List(t.Context(), "", func(storage.Info) error { n++; return nil }); err != nil || n != 0 {
		t.Errorf("List shows %d objects, %v; temp files are no objects", n, err)
	}
}

// TestCrashBeforeCommit writes uploads, never commits them, and reopens the
// store as a restarted process would.
func TestCrashBeforeCommit(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root)
	put(t, s, "nar/old", "old object")
	for range 2 { // one upload meant for "nar/new", one to replace "nar/old"
		u, err := s.Create(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := u.Write(bytes.Repeat([]byte("partial "), 1000)); err != nil {
			t.Fatal(err)
		}
	} // the process dies before Commit

	s2 := newStore(t, root)
	if _, err := s2.Stat(t.Context(), "nar/new"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("uncommitted object visible after a restart: %v", err)
	}
	r, err := s2.Open(t.Context(), "nar/old")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b := make([]byte, 100)
	n, _ := r.Read(b)
	if string(b[:n]) != "old object" {
		t.Errorf("old object reads %q after an interrupted overwrite", b[:n])
	}
	var keys []string
	if err := s2.List(t.Context(), "", func(i storage.Info) error { keys = append(keys, i.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys, []string{"nar/old"}) {
		t.Errorf("List after a restart = %q, want only nar/old", keys)
	}
}

// TestTempFilesCleanedUp checks that every way an upload ends leaves the
// temporary directory empty.
func TestTempFilesCleanedUp(t *testing.T) {
	root := t.TempDir()
	s := newStore(t, root)
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	ends := map[string]func(u storage.Upload) error{
		"commit": func(u storage.Upload) error { return u.Commit(t.Context(), "k") },
		"abort":  func(u storage.Upload) error { return u.Abort() },
		"cancelled commit": func(u storage.Upload) error {
			if u.Commit(cancelled, "k") == nil {
				return errors.New("commit with a done context succeeded")
			}
			return nil
		},
		"invalid key": func(u storage.Upload) error {
			if u.Commit(t.Context(), "../k") == nil {
				return errors.New("commit of an invalid key succeeded")
			}
			return nil
		},
	}
	for name, end := range ends {
		u, err := s.Create(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := u.Write([]byte("data")); err != nil {
			t.Fatal(err)
		}
		if err := end(u); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if left, _ := os.ReadDir(filepath.Join(root, tmpDir)); len(left) != 0 {
			t.Errorf("%s left %d temporary files", name, len(left))
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	u, err := s.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := u.Write([]byte("data")); err == nil {
		t.Error("Write after the upload's context ended succeeded")
	}
	if left, _ := os.ReadDir(filepath.Join(root, tmpDir)); len(left) != 0 {
		t.Errorf("cancelled write left %d temporary files", len(left))
	}
}

func TestNewInvalidRoot(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, root := range []string{"", file} {
		if s, err := New(root); !errors.Is(err, ErrInvalidRoot) {
			if err == nil {
				s.Close()
			}
			t.Errorf("New(%q) = %v, want ErrInvalidRoot", root, err)
		}
	}
}
