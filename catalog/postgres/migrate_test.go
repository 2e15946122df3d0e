package postgres

import (
	"context"
	"errors"
	neturl "net/url"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/internal/pgtest"
)

// rawConn connects to url with no catalog around it.
func rawConn(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// migrationRows returns version → number of rows in schema_migrations.
func migrationRows(t *testing.T, url string) map[int]int {
	t.Helper()
	rows, err := rawConn(t, url).Query(context.Background(), `SELECT version FROM schema_migrations`)
	if err != nil {
		t.Fatalf("reading schema_migrations: %v", err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatal(err)
	}
	got := map[int]int{}
	for _, v := range versions {
		got[v]++
	}
	return got
}

func TestMigrationsAppliedOnce(t *testing.T) {
	// Whatever the database's default isolation.
	for _, isolation := range []string{"", "repeatable read", "serializable"} {
		name := "server_default"
		if isolation != "" {
			name = strings.ReplaceAll(isolation, " ", "_")
		}
		t.Run(name, func(t *testing.T) {
			url := pgtest.Shared(t).NewDatabase(t)
			if isolation != "" {
				url += "&default_transaction_isolation=" + neturl.PathEscape(isolation)
			}
			testMigrationsAppliedOnce(t, url)
		})
	}
}

// testMigrationsAppliedOnce opens four catalogs at once on the new
// database at url and checks that each migration was applied once.
func testMigrationsAppliedOnce(t *testing.T, url string) {
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	// Several replicas start together on an empty database, each with its
	// own pool.
	const replicas = 4
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, replicas)
	cats := make([]*Catalog, replicas)
	for i := range cats {
		wg.Go(func() {
			<-start
			cats[i], errs[i] = Open(context.Background(), url)
		})
	}
	close(start)
	wg.Wait()
	for i, c := range cats {
		if errs[i] != nil {
			t.Fatalf("concurrent Open %d: %v", i, errs[i])
		}
		c.Close()
	}
	// Reopening applies nothing again (a second CREATE TABLE would fail).
	for range 2 {
		openURL(t, url).Close()
	}
	got := migrationRows(t, url)
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
	url := pgtest.Shared(t).NewDatabase(t)
	openURL(t, url).Close()
	if _, err := rawConn(t, url).Exec(context.Background(),
		`INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, '9999_future.sql', 0)`); err != nil {
		t.Fatalf("recording a future migration: %v", err)
	}
	_, err := Open(context.Background(), url)
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open of a newer database: error %v, want ErrSchemaTooNew", err)
	}
	if !strings.Contains(err.Error(), "9999") {
		t.Errorf("error %q does not name the unknown migration", err)
	}
}

// TestOpenHidesPassword checks that no error of Open shows the password,
// whether the URL does not parse, the server is unreachable or it refuses
// the login.
func TestOpenHidesPassword(t *testing.T) {
	srv := pgtest.Shared(t)
	const secret = "s3cr3t-Pa55"
	ctx := context.Background()
	conn := rawConn(t, srv.URL("postgres"))
	if _, err := conn.Exec(ctx, `DO $$ BEGIN
		IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'nobody_here') THEN
			CREATE ROLE nobody_here NOLOGIN PASSWORD '`+secret+`';
		END IF; END $$`); err != nil {
		t.Fatal(err)
	}
	port := strings.Split(strings.Split(srv.URL("postgres"), "127.0.0.1:")[1], "/")[0]
	for _, tc := range []struct {
		name, url string
		want      error
	}{
		{"unparsable", "postgres://u:" + secret + "@127.0.0.1:notaport/db", ErrInvalidURL},
		{"bad option", "postgres://u:" + secret + "@127.0.0.1:" + port + "/db?sslmode=bogus", ErrInvalidURL},
		{"key=value", "host=127.0.0.1 password=se cret user=u port=x", ErrInvalidURL},
		{"password in query", "postgres://127.0.0.1:1/db?user=u&password=" + secret + "&sslmode=disable", nil},
		{"unreachable", "postgres://u:" + secret + "@127.0.0.1:1/db?sslmode=disable", nil},
		{"login refused", "postgres://nobody_here:" + secret + "@127.0.0.1:" + port + "/postgres?sslmode=disable", nil},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			c, err := Open(ctx, tc.url)
			if err == nil {
				c.Close()
				t.Fatal("Open succeeded")
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error shows the password: %v", err)
			}
			var ce *pgconn.ConnectError
			var pe *pgconn.ParseConfigError
			if errors.As(err, &ce) || errors.As(err, &pe) {
				t.Errorf("error %v carries the connection settings, password included", err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("error %v, want %v", err, tc.want)
			}
			t.Log(err)
		})
	}
}

// TestMigrateFromVersion1 upgrades a database that has paths but no
// change log: the log starts empty and records what happens next.
func TestMigrateFromVersion1(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Shared(t).NewDatabase(t)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if err := migrateTo(ctx, pool, 1); err != nil {
		t.Fatalf("applying 0001 only: %v", err)
	}
	a, b := hashPart("v1-a"), hashPart("v1-b")
	if _, err := pool.Exec(ctx, `
		INSERT INTO nars (id, key, compression, file_hash, file_size, nar_hash, nar_size, created_at)
		VALUES (1, 'nar/a.nar.zst', 'zstd', 'sha256:fa', 10, 'sha256:na', 20, 1000);
		INSERT INTO paths (hash_part, store_path, nar_id, nar_hash, nar_size, narinfo, created_at, last_used)
		VALUES ('`+a+`', '/nix/store/`+a+`-a', 1, 'sha256:na', 20, 'StorePath: a', 1000, 1000),
			('`+b+`', '/nix/store/`+b+`-b', 1, 'sha256:na', 20, 'StorePath: b', 1000, 1000)`); err != nil {
		t.Fatalf("writing version 1 rows: %v", err)
	}
	pool.Close()
	if got := migrationRows(t, url); len(got) != 1 || got[1] != 1 {
		t.Fatalf("schema_migrations before the upgrade = %v, want only version 1", got)
	}

	c := openURL(t, url)
	if last, err := c.LastChange(ctx); err != nil || last != 0 {
		t.Fatalf("LastChange after the upgrade = %d, %v; want 0", last, err)
	}
	for _, h := range []string{b, a} {
		if _, err := c.DeletePath(ctx, h, catalog.DeleteCondition{}); err != nil {
			t.Fatalf("DeletePath(%s) after the upgrade: %v", h, err)
		}
	}
	changes, err := c.Changes(ctx, 0, 10)
	if err != nil || len(changes) != 2 || changes[0].HashPart != b || changes[1].HashPart != a {
		t.Errorf("Changes after deleting %s then %s = %v, %v", b, a, changes, err)
	}
}
