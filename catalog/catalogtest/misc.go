package catalogtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog"
)

func testRealisations(t *testing.T, c catalog.Catalog) {
	ctx := context.Background()
	id := "sha256:" + fmt.Sprintf("%x", sha256.Sum256([]byte("drv"))) + "!out"
	other := "sha256:" + fmt.Sprintf("%x", sha256.Sum256([]byte("other"))) + "!dev"
	v1 := []byte(`{"id":"` + id + `","outPath":"` + HashPart("out") + `-out","signatures":[],"dependentRealisations":{}}`)
	v2 := []byte(`{"id":"` + id + `","outPath":"` + HashPart("out") + `-out","signatures":["k:sig"],"dependentRealisations":{}}`)
	for _, tc := range []struct {
		id   string
		body []byte
	}{{id, v1}, {other, []byte("{}")}, {id, v2}} {
		if err := c.PutRealisation(ctx, tc.id, tc.body); err != nil {
			t.Fatalf("PutRealisation(%s): %v", tc.id, err)
		}
	}
	for _, tc := range []struct {
		id   string
		want []byte
	}{{id, v2}, {other, []byte("{}")}} {
		got, err := c.Realisation(ctx, tc.id)
		if err != nil {
			t.Fatalf("Realisation(%s): %v", tc.id, err)
		}
		if !bytes.Equal(got, tc.want) {
			t.Errorf("Realisation(%s) = %s, want %s", tc.id, got, tc.want)
		}
	}
	if _, err := c.Realisation(ctx, "sha256:00!out"); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("Realisation(missing) error = %v, want ErrNotFound", err)
	}
}

// newToken returns a token whose secret is "secret-"+name.
func newToken(name string, scope catalog.Scope, created time.Time) catalog.Token {
	sum := sha256.Sum256([]byte("secret-" + name))
	return catalog.Token{Name: name, Hash: sum[:], Scope: scope, CreatedAt: created}
}

// diffToken describes how got differs from want, or returns "".
func diffToken(got, want catalog.Token) string {
	if got.Name != want.Name || !bytes.Equal(got.Hash, want.Hash) || got.Scope != want.Scope ||
		!got.CreatedAt.Equal(want.CreatedAt) {
		return fmt.Sprintf("%+v, want %+v", got, want)
	}
	return ""
}

func testTokens(t *testing.T, c catalog.Catalog) {
	ctx := context.Background()
	zeta := newToken("zeta", catalog.ScopePush, at(0))
	alpha := newToken("alpha", catalog.ScopeRead, at(time.Second))
	mid := newToken("mid", catalog.ScopePush, at(2*time.Second))
	for _, tok := range []catalog.Token{zeta, alpha, mid} {
		if err := c.CreateToken(ctx, tok); err != nil {
			t.Fatalf("CreateToken(%s): %v", tok.Name, err)
		}
	}
	dup := newToken("zeta", catalog.ScopeRead, at(time.Hour))
	if err := c.CreateToken(ctx, dup); !errors.Is(err, catalog.ErrConflict) {
		t.Errorf("CreateToken(duplicate name) error = %v, want ErrConflict", err)
	}

	got, err := c.TokenByHash(ctx, alpha.Hash)
	if err != nil {
		t.Fatalf("TokenByHash(alpha): %v", err)
	}
	if d := diffToken(got, alpha); d != "" {
		t.Errorf("TokenByHash(alpha) = %s", d)
	}
	got, err = c.TokenByHash(ctx, zeta.Hash)
	if err != nil {
		t.Fatalf("TokenByHash(zeta): %v", err)
	}
	if d := diffToken(got, zeta); d != "" {
		t.Errorf("TokenByHash(zeta) after a refused duplicate = %s", d)
	}
	unknown := sha256.Sum256([]byte("nobody"))
	if _, err := c.TokenByHash(ctx, unknown[:]); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("TokenByHash(unknown) error = %v, want ErrNotFound", err)
	}

	checkTokens(t, c, alpha, mid, zeta)
	if err := c.DeleteToken(ctx, "mid"); err != nil {
		t.Fatalf("DeleteToken(mid): %v", err)
	}
	checkTokens(t, c, alpha, zeta)
	if _, err := c.TokenByHash(ctx, mid.Hash); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("TokenByHash(deleted) error = %v, want ErrNotFound", err)
	}
	if err := c.DeleteToken(ctx, "mid"); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("DeleteToken(deleted) error = %v, want ErrNotFound", err)
	}
	// The name is free again.
	if err := c.CreateToken(ctx, newToken("mid", catalog.ScopeRead, at(time.Hour))); err != nil {
		t.Errorf("CreateToken(mid) after delete: %v", err)
	}
}

// checkTokens fails the test unless Tokens returns exactly want, in order.
func checkTokens(t *testing.T, c catalog.Catalog, want ...catalog.Token) {
	t.Helper()
	got, err := c.Tokens(context.Background())
	if err != nil {
		t.Fatalf("Tokens: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("Tokens = %d tokens %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if d := diffToken(got[i], want[i]); d != "" {
			t.Errorf("Tokens[%d] = %s", i, d)
		}
	}
}

func testCancelledContext(t *testing.T, c catalog.Catalog) {
	live := context.Background()
	n := newNAR("cancel", at(0))
	p := newPath("cancel", n, "k:1")
	tok := newToken("cancel", catalog.ScopePush, at(0))
	existing := newNAR("existing", at(0))
	publish(t, c, existing, newPath("existing", existing, "k:1"))
	unclaimed := newNAR("unclaimed", at(0))
	putNAR(t, c, unclaimed)
	doomed := newNAR("doomed", at(0))
	putNAR(t, c, doomed)
	markDeleting(t, c, doomed.Key, at(time.Hour), true)
	addPin(t, c, "kept", "existing", at(0), time.Time{}, 0)
	if ok, err := c.TryLock(live, "gc", "holder", time.Hour); err != nil || !ok {
		t.Fatalf("TryLock = %v, %v", ok, err)
	}

	ctx, cancel := context.WithCancel(live)
	cancel()
	calls := []struct {
		name string
		call func() error
	}{
		{"PutNAR", func() error { return c.PutNAR(ctx, n) }},
		{"LookupNAR", func() error { _, err := c.LookupNAR(ctx, existing.Key); return err }},
		{"Publish", func() error { return c.Publish(ctx, p, noOpts) }},
		{"NarInfo", func() error { _, err := c.NarInfo(ctx, HashPart("existing")); return err }},
		{"Path", func() error { _, err := c.Path(ctx, HashPart("existing")); return err }},
		{"WalkPaths", func() error { return c.WalkPaths(ctx, func(catalog.Path) error { return nil }) }},
		{"UnclaimedNARs", func() error { _, err := c.UnclaimedNARs(ctx, at(time.Hour)); return err }},
		{"BlobInUse", func() error { _, err := c.BlobInUse(ctx, existing.Key); return err }},
		{"BeginNAR", func() error { return c.BeginNAR(ctx, n.Key, n.ListingKey, at(0)) }},
		{"WalkGraph", func() error { return c.WalkGraph(ctx, func(catalog.GraphNode) error { return nil }) }},
		{"Referrers", func() error { _, err := c.Referrers(ctx, HashPart("existing")); return err }},
		{"RecordUse", func() error {
			return c.RecordUse(ctx, map[string]time.Time{HashPart("existing"): at(time.Hour)},
				map[string]time.Time{existing.Key: at(time.Hour)})
		}},
		{"DeletePath", func() error {
			_, err := c.DeletePath(ctx, HashPart("existing"), catalog.DeleteCondition{})
			return err
		}},
		{"MarkNARDeleting", func() error {
			_, _, err := c.MarkNARDeleting(ctx, unclaimed.Key, at(time.Hour))
			return err
		}},
		{"MarkNARDeleting(orphan)", func() error {
			_, _, err := c.MarkNARDeleting(ctx, n.Key, at(time.Hour))
			return err
		}},
		{"DeletingNARs", func() error { _, err := c.DeletingNARs(ctx); return err }},
		{"DropNAR", func() error { return c.DropNAR(ctx, doomed.Key) }},
		{"AddPin", func() error {
			return c.AddPin(ctx, catalog.Pin{Name: "cancel", HashPart: HashPart("existing"), CreatedAt: at(0)}, 0)
		}},
		{"Pins", func() error { _, err := c.Pins(ctx); return err }},
		{"RemovePin", func() error { return c.RemovePin(ctx, "kept") }},
		{"TryLock", func() error { _, err := c.TryLock(ctx, "gc", "cancel", time.Hour); return err }},
		{"Unlock", func() error { return c.Unlock(ctx, "gc", "holder") }},
		{"RecordGCRun", func() error { return c.RecordGCRun(ctx, catalog.GCRun{Holder: "cancel"}) }},
		{"LastGCRun", func() error { _, err := c.LastGCRun(ctx); return err }},
		{"Stats", func() error { _, err := c.Stats(ctx, at(0), []time.Duration{time.Hour}); return err }},
		{"PutRealisation", func() error { return c.PutRealisation(ctx, "sha256:00!out", []byte("{}")) }},
		{"Realisation", func() error { _, err := c.Realisation(ctx, "sha256:00!out"); return err }},
		{"CreateToken", func() error { return c.CreateToken(ctx, tok) }},
		{"TokenByHash", func() error { _, err := c.TokenByHash(ctx, tok.Hash); return err }},
		{"Tokens", func() error { _, err := c.Tokens(ctx); return err }},
		{"DeleteToken", func() error { return c.DeleteToken(ctx, tok.Name) }},
	}
	for _, tc := range calls {
		if err := tc.call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: error %v, want context.Canceled", tc.name, err)
		}
	}
	// Nothing was written.
	if _, err := c.LookupNAR(live, n.Key); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("LookupNAR after cancelled PutNAR: error %v, want ErrNotFound", err)
	}
	checkAbsent(t, c, p.HashPart)
	if _, err := c.Realisation(live, "sha256:00!out"); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("Realisation after cancelled PutRealisation: error %v, want ErrNotFound", err)
	}
	if _, err := c.TokenByHash(live, tok.Hash); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("TokenByHash after cancelled CreateToken: error %v, want ErrNotFound", err)
	}
	checkPath(t, c, newPath("existing", existing, "k:1"))
	checkLookup(t, c, existing.Key, existing)
	checkLookup(t, c, unclaimed.Key, unclaimed)
	checkInUse(t, c, n.Key, false)
	checkDeleting(t, c, doomed.Key)
	checkPins(t, c, wantPin{"kept", "existing", at(0), time.Time{}, true})
	if ok, err := c.TryLock(live, "gc", "other", time.Hour); err != nil || ok {
		t.Errorf("TryLock after cancelled Unlock = %v, %v; want still held", ok, err)
	}
	if _, err := c.LastGCRun(live); !errors.Is(err, catalog.ErrNotFound) {
		t.Errorf("LastGCRun after cancelled RecordGCRun: error %v, want ErrNotFound", err)
	}
}

func testConcurrentPublish(t *testing.T, c catalog.Catalog) {
	const n = 50
	ctx := context.Background()
	baseNAR := newNAR("base", at(0))
	publish(t, c, baseNAR, newPath("base", baseNAR, "k:1"))
	want := make([]catalog.Path, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			seed := fmt.Sprintf("concurrent-%d", i)
			nar := newNAR(seed, at(time.Duration(i)*time.Second))
			want[i] = newPath(seed, nar, "k:1", "base", seed)
			if err := c.PutNAR(ctx, nar); err != nil {
				errs[i] = err
				return
			}
			errs[i] = c.Publish(ctx, want[i], noOpts)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent Publish: %v", err)
	}
	for _, p := range want {
		checkPath(t, c, p)
	}
	count := 0
	if err := c.WalkPaths(ctx, func(catalog.Path) error { count++; return nil }); err != nil {
		t.Fatalf("WalkPaths: %v", err)
	}
	if count != n+1 {
		t.Errorf("WalkPaths after concurrent Publish visited %d paths, want %d", count, n+1)
	}
}
