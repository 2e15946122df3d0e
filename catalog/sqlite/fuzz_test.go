package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"
	"testing"

	"github.com/nix-cached/cached/storepath"
)

// FuzzOutHash checks that outHash takes any body, and that PutRealisation
// (outHash, in Go) and migration 0002 (in SQL) find the same hash part in
// every outPath a stored realisation can have: ingest accepts only store
// path basenames (the two may differ on garbage, e.g. a NUL byte, which
// SQLite's string functions stop at, but no such row can exist).
func FuzzOutHash(f *testing.F) {
	h := "0123456789abcdfghijklmnpqrsvwxyz"
	for _, s := range []string{h + "-hello-2.12", "/nix/store/" + h + "-hello", "", "/", "a/", "short",
		"ünïcödé-ÿ/" + strings.Repeat("é", 40), "x\x00y", "/nix/store/" + h, "\x00/" + h} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, outPath string) {
		// Any body: a hash part or nothing.
		if h := outHash([]byte(outPath)); !isHashPart(h) {
			t.Errorf("outHash(%q) = %q, not a hash part", outPath, h)
		}
		body, err := json.Marshal(map[string]any{"id": "sha256:00!out", "outPath": outPath})
		if err != nil {
			t.Skip()
		}
		got := outHash(body)
		if !isHashPart(got) {
			t.Errorf("outHash(%s) = %q, not a hash part", body, got)
		}
		if _, err := storepath.ParseBase(outPath); err != nil {
			return
		}
		if want := migratedOutHash(t, body); got != want {
			t.Errorf("outHash(%s) = %q, migration 0002 computes %q", body, got, want)
		}
	})
}

// isHashPart reports whether h is "" or 32 nix32 characters.
func isHashPart(h string) bool {
	return h == "" || (len(h) == 32 && strings.Trim(h, "0123456789abcdfghijklmnpqrsvwxyz") == "")
}

// migratedOutHash stores body as a version 1 realisation in a new
// in-memory database and returns the out_hash migration 0002 gives it.
func migratedOutHash(t *testing.T, body []byte) string {
	t.Helper()
	ctx := context.Background()
	db, err := sql.Open("sqlite3", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if err := migrateTo(ctx, db, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO realisations (id, body, created_at) VALUES ('r', ?, 0)`,
		body); err != nil {
		t.Fatal(err)
	}
	if err := migrateTo(ctx, db, 2); err != nil {
		t.Fatal(err)
	}
	var h string
	if err := db.QueryRowContext(ctx, `SELECT out_hash FROM realisations WHERE id = 'r'`).Scan(&h); err != nil {
		t.Fatal(err)
	}
	return h
}
