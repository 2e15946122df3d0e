package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/catalog/catalogtest"
	"github.com/nix-cached/cached/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// openT opens the catalog of a fresh database of the shared cluster and
// closes it when the test ends.
func openT(t testing.TB) *Catalog {
	t.Helper()
	return openURL(t, pgtest.Shared(t).NewDatabase(t))
}

// openURL opens the catalog at url and closes it when the test ends.
func openURL(t testing.TB, url string) *Catalog {
	t.Helper()
	c, err := Open(context.Background(), url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestConformance(t *testing.T) {
	catalogtest.Run(t, func(t *testing.T) catalog.Catalog {
		c, err := Open(context.Background(), pgtest.Shared(t).NewDatabase(t))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return c
	})
}

// TestBytewiseOrder opens the catalog on a database whose default
// collation is ICU's en-US, which sorts "alpha" before "Beta": names still
// sort bytewise, as in SQLite.
func TestBytewiseOrder(t *testing.T) {
	srv := pgtest.Shared(t)
	ctx := context.Background()
	admin := rawConn(t, srv.URL("postgres"))
	name := fmt.Sprintf("icu_%d", time.Now().UnixNano())
	if _, err := admin.Exec(ctx, `CREATE DATABASE `+name+
		` TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'`); err != nil {
		t.Skipf("this PostgreSQL cannot create an ICU database: %v", err)
	}
	t.Cleanup(func() { admin.Exec(context.Background(), `DROP DATABASE `+name+` WITH (FORCE)`) })
	c := openURL(t, strings.Replace(srv.URL("postgres"), "/postgres?", "/"+name+"?", 1))

	names := []string{"alpha", "Beta", "_under", "Zeta", "beta"}
	for i, n := range names {
		must(t, "CreateToken", c.CreateToken(ctx, catalog.Token{Name: n, Hash: []byte{byte(i)}, Scope: catalog.ScopeRead}))
	}
	toks, err := c.Tokens(ctx)
	must(t, "Tokens", err)
	var got []string
	for _, tok := range toks {
		got = append(got, tok.Name)
	}
	want := slices.Sorted(slices.Values(names))
	if !slices.Equal(got, want) {
		t.Errorf("Tokens in order %q, want bytewise %q", got, want)
	}
}

func TestTryLockTakeover(t *testing.T) {
	url := pgtest.Shared(t).NewDatabase(t)
	catalogtest.TryLockTakeover(t, func(t *testing.T) catalog.Catalog { return openURL(t, url) })
}

// TestTryLockPoolOfOne holds the collector's lock on a catalog whose pool
// has one connection: the lock's session is not the pool's, so the
// catalog keeps working while it is held.
func TestTryLockPoolOfOne(t *testing.T) {
	c := openURL(t, pgtest.Shared(t).NewDatabase(t)+"&pool_max_conns=1")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if ok, err := c.TryLock(ctx, "gc", "h:1", time.Hour); err != nil || !ok {
		t.Fatalf("TryLock: %v %v", ok, err)
	}
	if _, err := c.Pins(ctx); err != nil {
		t.Fatalf("a query while the lock is held: %v", err)
	}
	if err := c.Unlock(ctx, "gc", "h:1"); err != nil {
		t.Fatal(err)
	}
}
