package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog"
)

// v1Fixture is what TestMigrateFromVersion1 writes with only migration
// 0001 applied.
const v1Fixture = `
INSERT INTO nars (id, key, compression, file_hash, file_size, nar_hash, nar_size, listing_key, created_at)
VALUES
	(1, 'nar/a.nar.zst', 'zstd', 'sha256:fa', 10, 'sha256:na', 20, 'ls/a.ls', 1000),
	(2, 'nar/b.nar.xz', 'xz', 'sha256:fb', 30, 'sha256:nb', 40, NULL, 2000),
	(3, 'nar/free.nar.zst', 'zstd', 'sha256:ff', 50, 'sha256:nf', 60, NULL, 3000);
INSERT INTO nar_aliases (name, nar_id) VALUES ('nar/a.nar.xz', 1);
INSERT INTO paths (hash_part, store_path, nar_id, nar_hash, nar_size, deriver, narinfo, created_at)
VALUES
	('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', '/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-a', 1, 'sha256:na', 20,
	 'dddddddddddddddddddddddddddddddd-a.drv', 'StorePath: a', 1111),
	('bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', '/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-b', 2, 'sha256:nb', 40,
	 '', 'StorePath: b', 2222);
INSERT INTO refs (referrer, reference) VALUES
	('bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'),
	('bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb');
INSERT INTO realisations (id, body, created_at) VALUES
	('sha256:01!out', CAST('{"id":"sha256:01!out","outPath":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-a","signatures":[]}' AS BLOB), 1),
	('sha256:02!out', CAST('{"outPath":"/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-b"}' AS BLOB), 2),
	('sha256:03!out', CAST('{"outPath":{"not":"a string"}}' AS BLOB), 3),
	('sha256:04!out', CAST('not json' AS BLOB), 4),
	('sha256:05!out', CAST('{}' AS BLOB), 5);
`

func TestMigrateFromVersion1(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v1.db")
	db := rawDB(t, path)
	if err := migrateTo(ctx, db, 1); err != nil {
		t.Fatalf("applying 0001 only: %v", err)
	}
	if _, err := db.ExecContext(ctx, v1Fixture); err != nil {
		t.Fatalf("writing version 1 rows: %v", err)
	}
	if got := migrationRows(t, path); len(got) != 1 || got[1] != 1 {
		t.Fatalf("schema_migrations before the upgrade = %v, want only version 1", got)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	c := openT(t, path)
	a, b := strings.Repeat("a", 32), strings.Repeat("b", 32)
	// last_used = created_at.
	for h, want := range map[string]int64{a: 1111, b: 2222} {
		p, err := c.Path(ctx, h)
		if err != nil {
			t.Fatalf("Path(%s) after the upgrade: %v", h, err)
		}
		if !p.LastUsed.Equal(catalog.FromMillis(want)) || !p.CreatedAt.Equal(catalog.FromMillis(want)) {
			t.Errorf("Path(%s) after the upgrade: CreatedAt %v, LastUsed %v; want both %v",
				h, p.CreatedAt, p.LastUsed, catalog.FromMillis(want))
		}
	}
	// References survive the move to a table clustered by referrer.
	if p, err := c.Path(ctx, b); err != nil || strings.Join(p.References, " ") != a+" "+b {
		t.Errorf("references of %s after the upgrade = %v, %v; want %s %s", b, p.References, err, a, b)
	}
	if refs, err := c.Referrers(ctx, a); err != nil || len(refs) != 1 || refs[0] != b {
		t.Errorf("Referrers(%s) after the upgrade = %v, %v; want %s", a, refs, err, b)
	}
	var refsSQL string
	if err := rawDB(t, path).QueryRowContext(ctx, `SELECT sql FROM sqlite_master
		WHERE type = 'table' AND name = 'refs'`).Scan(&refsSQL); err != nil || !strings.Contains(refsSQL, "WITHOUT ROWID") {
		t.Errorf("refs after the upgrade: %q, %v; want a WITHOUT ROWID table", refsSQL, err)
	}
	// Every NAR is ready: found, aliases too, and claimable.
	for _, name := range []string{"nar/a.nar.zst", "nar/a.nar.xz", "nar/b.nar.xz", "nar/free.nar.zst"} {
		if _, err := c.LookupNAR(ctx, name); err != nil {
			t.Errorf("LookupNAR(%s) after the upgrade: %v", name, err)
		}
	}
	free, ok, err := c.MarkNARDeleting(ctx, "nar/free.nar.zst", catalog.FromMillis(3001))
	if err != nil || !ok || free.FileSize != 50 {
		t.Errorf("MarkNARDeleting(unclaimed NAR of version 1) = %+v, %v, %v", free, ok, err)
	}
	// out_hash was filled from the bodies.
	rows, err := rawDB(t, path).QueryContext(ctx, `SELECT id, out_hash FROM realisations ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for rows.Next() {
		var id, h string
		if err := rows.Scan(&id, &h); err != nil {
			t.Fatal(err)
		}
		got[id] = h
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	want := map[string]string{
		"sha256:01!out": a, "sha256:02!out": b, "sha256:03!out": "", "sha256:04!out": "", "sha256:05!out": "",
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("out_hash of %s = %q, want %q", id, got[id], w)
		}
		if h := outHash(mustRealisation(t, c, id)); h != w {
			t.Errorf("outHash(body of %s) = %q, want %q as the migration computed", id, h, w)
		}
	}
	// The change log starts empty.
	if last, err := c.LastChange(ctx); err != nil || last != 0 {
		t.Errorf("LastChange after the upgrade = %d, %v; want 0", last, err)
	}
	// Deleting the paths takes their realisations, and is logged.
	for _, h := range []string{b, a} {
		if _, err := c.DeletePath(ctx, h, catalog.DeleteCondition{}); err != nil {
			t.Fatalf("DeletePath(%s): %v", h, err)
		}
	}
	changes, err := c.Changes(ctx, 0, 10)
	if err != nil || len(changes) != 2 || changes[0].HashPart != b || changes[1].HashPart != a {
		t.Errorf("Changes after deleting %s then %s = %v, %v", b, a, changes, err)
	}
	for id, w := range want {
		_, err := c.Realisation(ctx, id)
		if gone := errors.Is(err, catalog.ErrNotFound); gone != (w != "") {
			t.Errorf("Realisation(%s) after deleting the paths: error %v", id, err)
		}
	}
}

// mustRealisation returns a stored realisation's body or fails the test.
func mustRealisation(t *testing.T, c *Catalog, id string) []byte {
	t.Helper()
	body, err := c.Realisation(context.Background(), id)
	if err != nil {
		t.Fatalf("Realisation(%s): %v", id, err)
	}
	return body
}

func TestQueryPlans(t *testing.T) {
	ctx := context.Background()
	c := openT(t, filepath.Join(t.TempDir(), "plans.db"))
	for _, tc := range []struct {
		query string
		args  []any
		want  string
	}{
		{`SELECT referrer FROM refs WHERE reference = ? AND referrer <> ?`, []any{"x", "x"},
			"COVERING INDEX refs_reference"},
		{`SELECT 1 FROM paths WHERE deriver = ?`, []any{"x"}, "INDEX paths_deriver"},
		{`DELETE FROM realisations WHERE out_hash = ?`, []any{"x"}, "INDEX realisations_out_hash"},
		{`SELECT 1 FROM pins WHERE hash_part = ?`, []any{"x"}, "INDEX pins_hash_part"},
		{deletingNARsQuery, nil, "INDEX nars_unready"},
		{`SELECT 1 FROM nars WHERE listing_key = ?`, []any{"x"}, "INDEX nars_listing_key"},
		{`SELECT 1 FROM nars WHERE state = 'deleting' AND (key IN (?, ?) OR listing_key IN (?, ?))`,
			[]any{"a", "b", "a", "b"}, "INDEX nars_listing_key"},
		{markNARsQuery, []any{`["x"]`, 1}, "INDEX sqlite_autoindex_nars_1 (key=?)"},
		{`SELECT reference FROM refs WHERE referrer = ?`, []any{"x"}, "PRIMARY KEY (referrer=?)"},
		{`SELECT 1 FROM paths WHERE nar_id = ?`, []any{1}, "INDEX paths_nar_id"},
		{`SELECT seq, hash_part FROM narinfo_changes WHERE seq > ? ORDER BY seq LIMIT ?`, []any{0, 10},
			"INTEGER PRIMARY KEY"},
	} {
		rows, err := c.writer.QueryContext(ctx, `EXPLAIN QUERY PLAN `+tc.query, tc.args...)
		if err != nil {
			t.Fatalf("EXPLAIN %s: %v", tc.query, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		if !strings.Contains(strings.Join(plan, "; "), tc.want) {
			t.Errorf("plan of %s = %q, want it to use %s", tc.query, plan, tc.want)
		}
	}
}

func TestOutHash(t *testing.T) {
	h := strings.Repeat("x0", 16)
	for _, tc := range []struct{ body, want string }{
		{`{"outPath":"` + h + `-name"}`, h},
		{`{"outPath":"/nix/store/` + h + `-name"}`, h},
		{`{"outPath":"short"}`, ""},
		{`{"outPath":"` + h + `"}`, h},
		{`{"outPath":"` + strings.Repeat("e", 32) + `-no-nix32"}`, ""},
		{`{"outPath":"` + h[:31] + `é-name"}`, ""},
		{`{"outPath":"/nix/store/` + h + `-a/b"}`, ""},
		{`{"outPath":""}`, ""},
		{`{"outPath":null}`, ""},
		{`{"outPath":7}`, ""},
		{`{}`, ""},
		{`[1,2]`, ""},
		{``, ""},
	} {
		if got := outHash([]byte(tc.body)); got != tc.want {
			t.Errorf("outHash(%s) = %q, want %q", tc.body, got, tc.want)
		}
	}
}

// TestStatsBucketRounding checks that a bucket bound between milliseconds
// keeps a path last used before it out.
func TestStatsBucketRounding(t *testing.T) {
	ctx := context.Background()
	c := openT(t, filepath.Join(t.TempDir(), "stats.db"))
	n := testNAR(1, catalog.FromMillis(1000))
	if err := c.PutNAR(ctx, n); err != nil {
		t.Fatal(err)
	}
	p := testPath(1, n)
	p.CreatedAt = catalog.FromMillis(1000)
	if err := c.Publish(ctx, p, catalog.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	// The path is 1.0005 s old: older than 1.0004 s, within 1.0006 s.
	now := catalog.FromMillis(2000).Add(500 * time.Microsecond)
	for _, tc := range []struct {
		age  time.Duration
		want int
	}{{1000400 * time.Microsecond, 0}, {1000600 * time.Microsecond, 1}, {time.Second, 0}} {
		s, err := c.Stats(ctx, now, []time.Duration{tc.age})
		if err != nil {
			t.Fatal(err)
		}
		if s.ByLastUse[0].Paths != tc.want {
			t.Errorf("Stats within %v: %d paths, want %d", tc.age, s.ByLastUse[0].Paths, tc.want)
		}
	}
}
