package storagetest

import (
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/nix-cached/cached/storage"
)

// validKeys uses every character ValidateKey allows, nested directories,
// keys that are prefixes of other keys' directories, and a key of maxLen
// bytes (1024 unless the driver declares less).
func validKeys(maxLen int) []string {
	return []string{
		"nix-cache-info",
		"5sbpggnbip0823i5hiz50vgjqgq7kd7c.narinfo",
		"5sbpggnbip0823i5hiz50vgjqgq7kd7c.ls",
		"nar/0fmqhv6kapw15psla37l5i7r6qrvcb5ig6gkkyx7jhmg467ys7br.nar.zst",
		"realisations/sha256:ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12!out.doi",
		"log/628bd2hgcbilh0bkihr7a29p4cy735cb-h3exp-x.drv",
		"debuginfo/0123456789abcdef0123456789abcdef01234567.debug",
		"chars/ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._+=:!-",
		"chars/_+=:!-.",
		"a", "a/a", "a/a/a", "ab/a", "a/b/c/d/e/f/g/h",
		"x", "-", "_", "=", "+", ":", "!", "0",
		longKey(maxLen),
	}
}

// longKey returns a valid key of n bytes made of 200-byte directories.
func longKey(n int) string {
	long := strings.Repeat(strings.Repeat("L", 200)+"/", 5)
	if n <= len(long) {
		return long[:n-1] + "l"
	}
	return long + strings.Repeat("l", n-len(long))
}

// testValidKeys stores, reads, lists and deletes every valid key. With
// nestedHidden, List may omit the keys that lie below another key.
func testValidKeys(t *testing.T, s storage.Store, maxLen int, nestedHidden bool) {
	keys := validKeys(maxLen)
	want := make(map[string]int64)
	hidden := make(map[string]bool)
	for _, k := range keys {
		if err := storage.ValidateKey(k); err != nil {
			t.Fatalf("suite bug: %v", err)
		}
		Put(t, s, k, []byte("<"+k+">"))
		want[k] = int64(len(k) + 2)
		for _, dir := range keys {
			if nestedHidden && strings.HasPrefix(k, dir+"/") {
				hidden[k] = true
			}
		}
	}
	for _, k := range keys {
		if hidden[k] {
			wantReadable(t, s, k, []byte("<"+k+">"))
		} else {
			wantObject(t, s, k, []byte("<"+k+">"))
		}
	}
	got := list(t, s, "")
	for k := range hidden {
		if n, listed := got[k]; listed && n != want[k] {
			t.Errorf("List(\"\") reports %q with size %d, want %d", k, n, want[k])
		}
		delete(got, k)
	}
	wantListed := maps.Clone(want)
	maps.DeleteFunc(wantListed, func(k string, _ int64) bool { return hidden[k] })
	if !maps.Equal(got, wantListed) {
		t.Errorf("List(\"\") = %v\nwant %v", got, wantListed)
	}
	for _, k := range keys {
		if err := s.Delete(t.Context(), k); err != nil {
			t.Errorf("Delete(%q): %v", k, err)
		}
		wantAbsent(t, s, k)
	}
	if got := list(t, s, ""); len(got) != 0 {
		t.Errorf("List after deleting everything = %v", got)
	}
}

func testInvalidKeys(t *testing.T, s storage.Store) {
	Put(t, s, "a/b", []byte("x")) // so that "a//b" and friends have a neighbour
	invalid := []string{
		"", "/abs", "../x", "a/../b", "a//b", ".tmp/x", "a/.x", "a/", "a\\b", "a b",
		".", "..", "./a", "a/.", "a\x00b", "a\nb", "é", strings.Repeat("k", 1025),
	}
	for _, key := range invalid {
		if _, err := s.Open(t.Context(), key); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Open(%q) = %v, want ErrInvalidKey", key, err)
		}
		if _, err := s.Stat(t.Context(), key); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Stat(%q) = %v, want ErrInvalidKey", key, err)
		}
		if err := s.Delete(t.Context(), key); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Delete(%q) = %v, want ErrInvalidKey", key, err)
		}
		u := create(t.Context(), t, s)
		write(t, u, []byte("payload"))
		if err := u.Commit(t.Context(), key); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Commit(%q) = %v, want ErrInvalidKey", key, err)
		}
	}
	if got := list(t, s, ""); !maps.Equal(got, map[string]int64{"a/b": 1}) {
		t.Errorf("after invalid keys, List = %v, want only a/b", got)
	}
}

func testList(t *testing.T, s storage.Store) {
	objects := map[string]int64{
		"nar/aa1.nar":        1,
		"nar/aa2.nar.zst":    22,
		"nar/bb.nar":         333,
		"nar2/x":             4,
		"narinfo.narinfo":    55,
		"nar/sub/deep/aa":    6,
		"realisations/a!out": 7,
	}
	for k, n := range objects {
		Put(t, s, k, []byte(strings.Repeat("z", int(n))))
	}
	pick := func(keys ...string) map[string]int64 {
		m := make(map[string]int64)
		for _, k := range keys {
			m[k] = objects[k]
		}
		return m
	}
	tests := []struct {
		prefix string
		want   map[string]int64
	}{
		{"", objects},
		{"nar/", pick("nar/aa1.nar", "nar/aa2.nar.zst", "nar/bb.nar", "nar/sub/deep/aa")},
		{"nar", pick("nar/aa1.nar", "nar/aa2.nar.zst", "nar/bb.nar", "nar/sub/deep/aa", "nar2/x", "narinfo.narinfo")},
		{"nar/aa", pick("nar/aa1.nar", "nar/aa2.nar.zst")},
		{"nar/aa1.nar", pick("nar/aa1.nar")},
		{"nar/aa1.nar.", pick()},
		{"nar/s", pick("nar/sub/deep/aa")},
		{"nar/sub/deep/", pick("nar/sub/deep/aa")},
		{"realisations/a!", pick("realisations/a!out")},
		{"n", pick("nar/aa1.nar", "nar/aa2.nar.zst", "nar/bb.nar", "nar/sub/deep/aa", "nar2/x", "narinfo.narinfo")},
		{"zzz", pick()},
		{"nar//", pick()},
		{"/", pick()},
		{"../", pick()},
		{"nar/../", pick()},
	}
	for _, tt := range tests {
		if got := list(t, s, tt.prefix); !maps.Equal(got, tt.want) {
			t.Errorf("List(%q) = %v\nwant %v", tt.prefix, got, tt.want)
		}
	}
}

// testKeyTooLong checks that a driver declaring a key limit below 1024
// bytes refuses a valid key one byte over it, as an invalid key, and stores
// nothing.
func testKeyTooLong(t *testing.T, s storage.Store, maxLen int) {
	key := longKey(maxLen + 1)
	if err := storage.ValidateKey(key); err != nil {
		t.Fatalf("suite bug: %v", err)
	}
	u := create(t.Context(), t, s)
	write(t, u, []byte("payload"))
	if err := u.Commit(t.Context(), key); !errors.Is(err, storage.ErrInvalidKey) {
		t.Errorf("Commit of a %d-byte key = %v, want ErrInvalidKey", len(key), err)
	}
	if _, err := s.Open(t.Context(), key); !errors.Is(err, storage.ErrInvalidKey) {
		t.Errorf("Open of a %d-byte key = %v, want ErrInvalidKey", len(key), err)
	}
	if _, err := s.Stat(t.Context(), key); !errors.Is(err, storage.ErrInvalidKey) {
		t.Errorf("Stat of a %d-byte key = %v, want ErrInvalidKey", len(key), err)
	}
	if err := s.Delete(t.Context(), key); !errors.Is(err, storage.ErrInvalidKey) {
		t.Errorf("Delete of a %d-byte key = %v, want ErrInvalidKey", len(key), err)
	}
	if l := list(t, s, ""); len(l) != 0 {
		t.Errorf("List after refusing a long key = %v, want nothing", l)
	}
	Put(t, s, longKey(maxLen), []byte("fits"))
	wantObject(t, s, longKey(maxLen), []byte("fits"))
}
