package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/catalog/catalogtest"
)

func TestConformance(t *testing.T) {
	catalogtest.Run(t, func(t *testing.T) catalog.Catalog {
		c, err := Open(context.Background(), filepath.Join(t.TempDir(), "catalog.db"))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return c
	})
}

// openT opens the catalog at path and closes it when the test ends.
func openT(t *testing.T, path string) *Catalog {
	t.Helper()
	c, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

// testNAR returns a NAR record named by i.
func testNAR(i int, created time.Time) catalog.NAR {
	h := fmt.Sprintf("%052d", i)
	return catalog.NAR{
		Key: "nar/" + h + ".nar.zst", Compression: "zstd",
		FileHash: "sha256:" + h, FileSize: 100, NarHash: "sha256:" + h, NarSize: 200,
		CreatedAt: created,
	}
}

// testPath returns a path stored in n whose hash part is made of i.
func testPath(i int, n catalog.NAR, refs ...string) catalog.Path {
	h := fmt.Sprintf("%032d", i)
	return catalog.Path{
		HashPart: h, StorePath: "/nix/store/" + h + "-p", NARKey: n.Key,
		NarHash: n.NarHash, NarSize: n.NarSize, References: refs,
		NarInfo: "StorePath: /nix/store/" + h + "-p\nURL: " + n.Key + "\n",
	}
}

func TestTwoHandlesShareWrites(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "shared.db")
	server, cli := openT(t, path), openT(t, path)

	// Each sees the other's writes immediately.
	tok := catalog.Token{Name: "ci", Hash: []byte("0123456789abcdef0123456789abcdef"), Scope: catalog.ScopePush}
	if err := cli.CreateToken(ctx, tok); err != nil {
		t.Fatalf("CreateToken via the second handle: %v", err)
	}
	if got, err := server.TokenByHash(ctx, tok.Hash); err != nil || got.Name != "ci" {
		t.Fatalf("TokenByHash via the first handle = %+v, %v", got, err)
	}
	n := testNAR(1, time.Time{})
	if err := server.PutNAR(ctx, n); err != nil {
		t.Fatalf("PutNAR: %v", err)
	}
	if err := server.Publish(ctx, testPath(1, n), catalog.PublishOptions{}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if _, err := cli.NarInfo(ctx, testPath(1, n).HashPart); err != nil {
		t.Fatalf("NarInfo via the second handle: %v", err)
	}

	// Interleaved writes from both wait for each other instead of failing.
	const perHandle = 40
	var wg sync.WaitGroup
	errs := make(chan error, 2*perHandle)
	for h, c := range []*Catalog{server, cli} {
		wg.Go(func() {
			for i := range perHandle {
				k := 100 + h*perHandle + i
				n := testNAR(k, time.Time{})
				if err := c.PutNAR(ctx, n); err != nil {
					errs <- err
					continue
				}
				// Each path references the first one, so Publish reads
				// what the other handle wrote.
				errs <- c.Publish(ctx, testPath(k, n, testPath(1, n).HashPart), catalog.PublishOptions{})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("interleaved write: %v", err)
		}
	}
	for _, c := range []*Catalog{server, cli} {
		count := 0
		if err := c.WalkPaths(ctx, func(catalog.Path) error { count++; return nil }); err != nil {
			t.Fatalf("WalkPaths: %v", err)
		}
		if count != 1+2*perHandle {
			t.Errorf("WalkPaths saw %d paths, want %d", count, 1+2*perHandle)
		}
	}
}

// rawDB opens the database file with no catalog around it.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", dsn(path, nil))
	if err != nil {
		t.Fatalf("sql.Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// migrationRows returns version → number of rows in schema_migrations.
func migrationRows(t *testing.T, path string) map[int]int {
	t.Helper()
	rows, err := rawDB(t, path).Query(`SELECT version FROM schema_migrations`)
	if err != nil {
		t.Fatalf("reading schema_migrations: %v", err)
	}
	defer rows.Close()
	got := map[int]int{}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		got[v]++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestMigrationsAppliedOnce(t *testing.T) {
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "migrate.db")
	// Several processes' worth of handles start together on a new file.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	cats := make([]*Catalog, 4)
	for i := range cats {
		wg.Go(func() { cats[i], errs[i] = Open(context.Background(), path) })
	}
	wg.Wait()
	for i, c := range cats {
		if errs[i] != nil {
			t.Fatalf("concurrent Open %d: %v", i, errs[i])
		}
		if err := c.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	// Reopening applies nothing again (a second CREATE TABLE would fail).
	for range 2 {
		c := openT(t, path)
		if err := c.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	got := migrationRows(t, path)
	if len(got) != len(ms) {
		t.Errorf("schema_migrations has versions %v, want the %d embedded ones", got, len(ms))
	}
	for _, m := range ms {
		if got[m.Version] != 1 {
			t.Errorf("migration %s recorded %d times, want once", m.Name, got[m.Version])
		}
	}
}

func TestFutureSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "future.db")
	c := openT(t, path)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := rawDB(t, path).Exec(
		`INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, '9999_future.sql', 0)`); err != nil {
		t.Fatalf("recording a future migration: %v", err)
	}
	_, err := Open(context.Background(), path)
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open of a newer database: error %v, want ErrSchemaTooNew", err)
	}
	if !strings.Contains(err.Error(), "9999") {
		t.Errorf("error %q does not name the unknown migration", err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	for _, path := range []string{"", filepath.Join(dir, "missing-dir", "x.db"), dir} {
		if c, err := Open(context.Background(), path); err == nil {
			c.Close()
			t.Errorf("Open(%q) succeeded, want an error", path)
		}
	}
}

func TestPragmas(t *testing.T) {
	ctx := context.Background()
	// A name that needs escaping in a URI still opens that exact file.
	path := filepath.Join(t.TempDir(), "odd ?name#%.db")
	c := openT(t, path)
	for _, tc := range []struct {
		db     *sql.DB
		pragma string
		want   string
	}{
		{c.writer, "journal_mode", "wal"},
		{c.reader, "journal_mode", "wal"},
		{c.writer, "foreign_keys", "1"},
		{c.reader, "foreign_keys", "1"},
		{c.writer, "synchronous", "2"}, // FULL
		{c.writer, "busy_timeout", "10000"},
		{c.reader, "busy_timeout", "10000"},
		{c.reader, "query_only", "1"},
	} {
		var got string
		if err := tc.db.QueryRowContext(ctx, "PRAGMA "+tc.pragma).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", tc.pragma, err)
		}
		if got != tc.want {
			t.Errorf("PRAGMA %s = %s, want %s", tc.pragma, got, tc.want)
		}
	}
	var file string
	if err := c.reader.QueryRowContext(ctx, `SELECT file FROM pragma_database_list WHERE name = 'main'`).
		Scan(&file); err != nil {
		t.Fatal(err)
	}
	if file != path {
		t.Errorf("database file = %q, want %q", file, path)
	}
}

func TestZeroTimesMeanNow(t *testing.T) {
	ctx := context.Background()
	c := openT(t, filepath.Join(t.TempDir(), "now.db"))
	before := time.Now().Add(-time.Millisecond)
	n := testNAR(1, time.Time{})
	if err := c.PutNAR(ctx, n); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctx, testPath(1, n), catalog.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	after := time.Now().Add(time.Millisecond)
	got, err := c.LookupNAR(ctx, n.Key)
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Path(ctx, testPath(1, n).HashPart)
	if err != nil {
		t.Fatal(err)
	}
	for name, tm := range map[string]time.Time{"NAR": got.CreatedAt, "Path": p.CreatedAt} {
		if tm.Before(before) || tm.After(after) {
			t.Errorf("%s.CreatedAt = %v, want between %v and %v", name, tm, before, after)
		}
	}
}

func TestLookupNARPrefersKeyOverAlias(t *testing.T) {
	ctx := context.Background()
	c := openT(t, filepath.Join(t.TempDir(), "alias.db"))
	a, b := testNAR(1, time.Time{}), testNAR(2, time.Time{})
	// b was uploaded under a's key as another name; a is stored under it.
	if err := c.PutNAR(ctx, b, a.Key); err != nil {
		t.Fatal(err)
	}
	if err := c.PutNAR(ctx, a); err != nil {
		t.Fatal(err)
	}
	got, err := c.LookupNAR(ctx, a.Key)
	if err != nil {
		t.Fatal(err)
	}
	if got.Key != a.Key {
		t.Errorf("LookupNAR(%s) = NAR %s, want the NAR stored under that key", a.Key, got.Key)
	}
}

// BeginNAR and PutNAR commit without an fsync, and leave the writer
// connection durable (synchronous=FULL) for the next write, also when
// they fail or their context is cancelled.
func TestLazyWritesRestoreSync(t *testing.T) {
	c := openT(t, filepath.Join(t.TempDir(), "catalog.db"))
	ctx := context.Background()
	full := func(when string) {
		t.Helper()
		var mode int
		if err := c.writer.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if mode != 2 {
			t.Errorf("after %s the writer's synchronous is %d, want 2 (FULL)", when, mode)
		}
	}
	key := "nar/" + catalogtest.FakeHash("lazy", 52) + ".nar.zst"
	if err := c.BeginNAR(ctx, key, "", time.Now()); err != nil {
		t.Fatal(err)
	}
	full("BeginNAR")
	n := catalog.NAR{Key: key, Compression: "zstd", FileHash: "sha256:x", FileSize: 1, NarHash: "sha256:y", NarSize: 2, CreatedAt: time.Now()}
	if err := c.PutNAR(ctx, n); err != nil {
		t.Fatal(err)
	}
	full("PutNAR")
	if _, ok, err := c.MarkNARDeleting(ctx, key, time.Now().Add(time.Hour)); err != nil || !ok {
		t.Fatalf("MarkNARDeleting: %v %v", ok, err)
	}
	if err := c.PutNAR(ctx, n); !errors.Is(err, catalog.ErrBusy) {
		t.Fatalf("PutNAR of a NAR being deleted: %v, want ErrBusy", err)
	}
	full("a refused PutNAR")
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := c.BeginNAR(cancelled, key+"x", "", time.Now()); err == nil {
		t.Fatal("BeginNAR with a cancelled context succeeded")
	}
	full("a cancelled BeginNAR")
}

// The writer checkpoints the WAL every walCheckpointPages, not SQLite's
// 1,000, on every connection it opens.
func TestWriterCheckpointPages(t *testing.T) {
	c := openT(t, filepath.Join(t.TempDir(), "catalog.db"))
	var pages int
	if err := c.writer.QueryRowContext(context.Background(), `PRAGMA wal_autocheckpoint`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if pages != walCheckpointPages {
		t.Errorf("wal_autocheckpoint = %d, want %d", pages, walCheckpointPages)
	}
}

func TestTryLockTakeover(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.db")
	catalogtest.TryLockTakeover(t, func(t *testing.T) catalog.Catalog { return openT(t, path) })
}
