package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRequireExisting checks which missing places a maintenance command
// refuses, and that the check creates nothing.
func TestRequireExisting(t *testing.T) {
	root := t.TempDir()
	empty := filepath.Join(root, "empty")
	cache := filepath.Join(root, "cache")
	for _, d := range []string{empty, cache} {
		if err := os.Mkdir(d, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(cache, "cached.db"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(root, "missing")
	const pg = "postgres://u:secret@db.example/cached"
	tests := []struct {
		name string
		d    dataFlags
		want string // in the error; "" for none
	}{
		{"missing data directory", dataFlags{dataDir: missing}, "data directory " + missing + " does not exist"},
		{"data directory without a catalog", dataFlags{dataDir: empty}, "data directory " + empty + " holds no cache (no cached.db)"},
		{"existing cache", dataFlags{dataDir: cache}, ""},
		{"blobs elsewhere, catalog in the missing directory", dataFlags{dataDir: missing, storage: "file:///srv/blobs"}, "does not exist"},
		{"missing SQLite file", dataFlags{dataDir: cache, database: "sqlite://" + missing + ".db"}, "catalog " + missing + ".db does not exist"},
		{"SQLite file elsewhere, blobs in the missing directory", dataFlags{dataDir: missing, database: "sqlite://" + filepath.Join(cache, "cached.db")}, "does not exist"},
		{"PostgreSQL, blobs in the missing directory", dataFlags{dataDir: missing, database: pg}, "data directory " + missing},
		{"PostgreSQL and S3: the data directory is not used", dataFlags{dataDir: missing, database: pg, storage: "s3://bucket/prefix"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.d.requireExisting()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, errNoCache) || !strings.Contains(err.Error(), tc.want) ||
				!strings.Contains(err.Error(), "only `cached serve` creates one") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %v; want errNoCache on one line, mentioning %q and cached serve", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("the database password is in the error: %v", err)
			}
		})
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the check created %s: %v", missing, err)
	}
	if ents, err := os.ReadDir(empty); err != nil || len(ents) > 0 {
		t.Errorf("the check wrote to %s: %v %v", empty, ents, err)
	}
	bad := dataFlags{dataDir: cache, database: "sqlite://relative.db"}
	if err := bad.requireExisting(); !errors.Is(err, errUsage) {
		t.Errorf("a malformed --database: %v, want a usage error", err)
	}
}
