package disk

import (
	"strings"

	"github.com/nix-cached/cached/storage"
)

// tmpDir holds uploads in progress. Its name starts with a dot, so no valid
// key can name it or anything in it.
const tmpDir = ".tmp"

// shard returns the two-hex-digit shard directory of a key's basename: the
// low byte of its 32-bit FNV-1a hash.
func shard(base string) string {
	const (
		offset32 = 2166136261
		prime32  = 16777619
	)
	h := uint32(offset32)
	for i := 0; i < len(base); i++ {
		h ^= uint32(base[i])
		h *= prime32
	}
	return shardName(byte(h))
}

// shardName is the name of the shard directory of byte b: two lowercase
// hex digits.
func shardName(b byte) string {
	const hex = "0123456789abcdef"
	return string([]byte{hex[b>>4], hex[b&0xf]})
}

// keyPath maps a valid key to its slash-separated path under the root: the
// key's directories, then the shard directory, then the basename.
// "nar/abc.nar.zst" becomes "nar/<xx>/abc.nar.zst".
func keyPath(key string) string {
	i := strings.LastIndexByte(key, '/')
	dir, base := key[:i+1], key[i+1:]
	return dir + shard(base) + "/" + base
}

// pathKey maps a slash-separated path under the root back to its key. It
// reports false for a path keyPath cannot produce.
func pathKey(p string) (string, bool) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", false
	}
	dirShard, base := p[:i], p[i+1:]
	j := strings.LastIndexByte(dirShard, '/')
	dir, sh := dirShard[:j+1], dirShard[j+1:]
	if sh != shard(base) {
		return "", false
	}
	key := dir + base
	if storage.ValidateKey(key) != nil {
		return "", false
	}
	return key, true
}

// isShardName reports whether name could be a shard directory.
func isShardName(name string) bool {
	if len(name) != 2 {
		return false
	}
	for i := 0; i < 2; i++ {
		c := name[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// mayHold reports whether the directory at slash path p (relative to the
// root, not ".") can hold files whose keys start with prefix. Files under p
// have keys starting with p+"/", unless p's last segment is a shard, whose
// files have keys starting with p's parent directory.
func mayHold(p, prefix string) bool {
	if overlaps(p+"/", prefix) {
		return true
	}
	i := strings.LastIndexByte(p, '/')
	return isShardName(p[i+1:]) && overlaps(p[:i+1], prefix)
}

// overlaps reports whether some string starting with a also starts with
// prefix.
func overlaps(a, prefix string) bool {
	return strings.HasPrefix(a, prefix) || strings.HasPrefix(prefix, a)
}
