package postgres

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog"
)

func TestZeroTimesMeanNow(t *testing.T) {
	ctx := context.Background()
	c := openT(t)
	before := time.Now().Add(-time.Millisecond)
	n := newNAR("now", time.Time{})
	p := newPath("now", n)
	publish(t, c, n, p)
	after := time.Now().Add(time.Millisecond)
	got, err := c.LookupNAR(ctx, n.Key)
	must(t, "LookupNAR", err)
	rec, err := c.Path(ctx, p.HashPart)
	must(t, "Path", err)
	for name, tm := range map[string]time.Time{"NAR": got.CreatedAt, "Path": rec.CreatedAt, "LastUsed": rec.LastUsed} {
		if tm.Before(before) || tm.After(after) {
			t.Errorf("%s = %v, want between %v and %v", name, tm, before, after)
		}
	}
}

func TestLookupNARPrefersKeyOverAlias(t *testing.T) {
	ctx := context.Background()
	c := openT(t)
	a, b := newNAR("a", t0), newNAR("b", t0)
	// b was uploaded under a's key as another name; a is stored under it.
	must(t, "PutNAR", c.PutNAR(ctx, b, a.Key))
	must(t, "PutNAR", c.PutNAR(ctx, a))
	got, err := c.LookupNAR(ctx, a.Key)
	must(t, "LookupNAR", err)
	if got.Key != a.Key {
		t.Errorf("LookupNAR(%s) = NAR %s, want the NAR stored under that key", a.Key, got.Key)
	}
}

// TestDoneContextAbortsWait holds a path's row locked from another
// connection, as a slow transaction of another replica would: a deletion
// waiting for it gives up when its context is done, and goes through once
// the row is free.
func TestDoneContextAbortsWait(t *testing.T) {
	ctx := context.Background()
	c := openT(t)
	n := newNAR("held", t0)
	p := newPath("held", n)
	publish(t, c, n, p)

	conn, err := c.pool.Acquire(ctx)
	must(t, "Acquire", err)
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	must(t, "Begin", err)
	if _, err := tx.Exec(ctx, `SELECT 1 FROM paths WHERE hash_part = $1 FOR KEY SHARE`, p.HashPart); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err = c.DeletePath(short, p.HashPart, catalog.DeleteCondition{})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("DeletePath of a locked path with a done context: error %v, want DeadlineExceeded", err)
	}
	must(t, "Rollback", tx.Rollback(ctx))
	if _, err := c.DeletePath(ctx, p.HashPart, catalog.DeleteCondition{}); err != nil {
		t.Fatalf("DeletePath once the row is free: %v", err)
	}
}

func TestOutHash(t *testing.T) {
	h := fakeHash("out", 32)
	for _, tc := range []struct {
		body, want string
	}{
		{`{"outPath":"` + h + `-out"}`, h},
		{`{"id":"sha256:01!out","outPath":"/nix/store/` + h + `-out","signatures":[]}`, h},
		{`{"outPath":"` + h + `"}`, h},
		{`{"outPath":"` + h[:31] + `"}`, ""},
		{`{"outPath":"` + strings.ToUpper(h) + `-out"}`, ""},
		{`{"outPath":"eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-out"}`, ""}, // e is not nix32
		{`{"outPath":{"not":"a string"}}`, ""},
		{`{"outPath":null}`, ""},
		{`{}`, ""},
		{`not json`, ""},
		{``, ""},
	} {
		if got := outHash([]byte(tc.body)); got != tc.want {
			t.Errorf("outHash(%s) = %q, want %q", tc.body, got, tc.want)
		}
	}
}
