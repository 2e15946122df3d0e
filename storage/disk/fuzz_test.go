package disk

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/nix-cached/cached/storage"
)

// FuzzKeyPath checks that every valid key maps to a local path inside a
// shard directory, outside the temporary directory, that maps back to it.
func FuzzKeyPath(f *testing.F) {
	for _, k := range []string{
		"nix-cache-info", "nar/abc.nar.zst", "realisations/sha256:ab12!out.doi",
		"a/b/c", "d3/abc.nar.zst", "nar/d3/abc.nar.zst", "../x", ".tmp/x", "a//b",
	} {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if storage.ValidateKey(key) != nil {
			return
		}
		p := keyPath(key)
		if !filepath.IsLocal(p) || strings.HasPrefix(p, tmpDir) {
			t.Fatalf("keyPath(%q) = %q, not a local path outside %s", key, p, tmpDir)
		}
		segs := strings.Split(p, "/")
		for _, s := range segs {
			if s == "" || s[0] == '.' {
				t.Fatalf("keyPath(%q) = %q has segment %q", key, p, s)
			}
		}
		if len(segs) < 2 || !isShardName(segs[len(segs)-2]) {
			t.Fatalf("keyPath(%q) = %q is not in a shard directory", key, p)
		}
		back, ok := pathKey(p)
		if !ok || back != key {
			t.Fatalf("pathKey(keyPath(%q)) = %q, %v", key, back, ok)
		}
		if !mayHold(p[:strings.LastIndexByte(p, '/')], key) {
			t.Fatalf("List would prune the directory of %q", key)
		}
	})
}
