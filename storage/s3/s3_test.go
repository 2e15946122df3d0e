package s3

import (
	"testing"

	"github.com/nix-cached/cached/storage"
	"github.com/nix-cached/cached/storage/storagetest"
)

// TestConformance runs the storage suite against MinIO, once with a key
// prefix and once at the bucket root. Parts are 5 MiB and an upload holds
// at most one part and a chunk, so the suite's 64 MiB object goes through
// the multipart path within its memory bound.
func TestConformance(t *testing.T) {
	srv := startMinIO(t)
	for _, prefix := range []string{"cache/v1", ""} {
		name := "prefix=" + prefix
		if prefix == "" {
			name = "root"
		}
		t.Run(name, func(t *testing.T) {
			opts := []storagetest.Option{storagetest.Streaming(), storagetest.ReopenMayFail(), storagetest.NestedKeysMayBeUnlisted()}
			if prefix != "" {
				opts = append(opts, storagetest.MaxKeyLen(maxKeyLen-len(prefix)-1))
			}
			storagetest.Run(t, func(t *testing.T) storage.Store {
				s, err := New(t.Context(), testConfig(t, srv, "", func(c *Config) {
					c.Prefix = prefix
					c.MaxBuffer = 1 // the least: one part and a chunk
				}))
				if err != nil {
					t.Fatal(err)
				}
				return s
			}, opts...)
		})
	}
}
