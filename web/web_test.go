package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/catalog/catalogtest"
	"github.com/nix-cached/cached/catalog/sqlite"
	"github.com/nix-cached/cached/storage"
	"github.com/nix-cached/cached/storage/disk"
)

// failing is a real catalog whose reads fail once broken is set: fault
// injection, for the pages' answers to a database that is down.
type failing struct {
	catalog.Catalog
	broken bool
}

var errDown = errors.New("database is down")

func (f *failing) Stats(ctx context.Context, now time.Time, ages []time.Duration) (catalog.Stats, error) {
	if f.broken {
		return catalog.Stats{}, errDown
	}
	return f.Catalog.Stats(ctx, now, ages)
}

func (f *failing) Path(ctx context.Context, hashPart string) (catalog.Path, error) {
	if f.broken {
		return catalog.Path{}, errDown
	}
	return f.Catalog.Path(ctx, hashPart)
}

// testUI is the pages over a SQLite catalog and a disk store in a
// temporary directory.
type testUI struct {
	ui    *UI
	cat   *failing
	store storage.Store
	clock *time.Time // the UI's Now
}

func newTestUI(t *testing.T) testUI {
	t.Helper()
	dir := t.TempDir()
	store, err := disk.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	cat, err := sqlite.Open(context.Background(), filepath.Join(dir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cat.Close()
		store.Close()
	})
	f := &failing{Catalog: cat}
	clock := time.Now()
	ui, err := New(Config{Catalog: f, Store: store, Logger: slog.New(slog.DiscardHandler),
		Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	return testUI{ui: ui, cat: f, store: store, clock: &clock}
}

// publish records a path named name whose NAR has a listing with the
// file names files, referencing refs (hash parts), and returns it.
func (u testUI) publish(t *testing.T, name string, files []string, refs ...string) catalog.Path {
	t.Helper()
	ctx := context.Background()
	hash := catalogtest.HashPart("web:" + name)
	n := catalog.NAR{
		Key: "nar/" + catalogtest.FakeHash("file:"+name, 52) + ".nar.zst", Compression: "zstd",
		FileHash: "sha256:" + catalogtest.FakeHash("file:"+name, 52), FileSize: 1000,
		NarHash: "sha256:" + catalogtest.FakeHash("nar:"+name, 52), NarSize: 4000,
		ListingKey: "ls/" + catalogtest.FakeHash("nar:"+name, 52) + ".ls", CreatedAt: time.Now(),
	}
	if files != nil {
		var ls strings.Builder
		ls.WriteString(`{"version":1,"root":{"type":"directory","entries":{`)
		for i, f := range files {
			if i > 0 {
				ls.WriteByte(',')
			}
			fmt.Fprintf(&ls, "%q:{\"type\":\"regular\",\"size\":%d}", f, 10*i)
		}
		ls.WriteString(`}}}`)
		if _, err := storage.Put(ctx, u.store, n.ListingKey, strings.NewReader(ls.String())); err != nil {
			t.Fatal(err)
		}
	}
	if err := u.cat.PutNAR(ctx, n); err != nil {
		t.Fatal(err)
	}
	p := catalog.Path{HashPart: hash, StorePath: "/nix/store/" + hash + "-" + name, NARKey: n.Key,
		NarHash: n.NarHash, NarSize: n.NarSize, References: refs, CreatedAt: n.CreatedAt,
		NarInfo: "StorePath: /nix/store/" + hash + "-" + name + "\nSig: test-1:c2lnbmF0dXJl\nSig: test-2:b3RoZXI=\n"}
	if err := u.cat.Publish(ctx, p, catalog.PublishOptions{AllowIncompleteClosure: true}); err != nil {
		t.Fatal(err)
	}
	return p
}

// get calls a page and returns its status and body.
func get(t *testing.T, h func(http.ResponseWriter, *http.Request) error, target string) (int, string, error) {
	t.Helper()
	w := httptest.NewRecorder()
	err := h(w, httptest.NewRequest(http.MethodGet, target, nil))
	for k, want := range map[string]string{
		"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store",
		"X-Content-Type-Options": "nosniff", "Content-Security-Policy": Policy,
	} {
		if got := w.Header().Get(k); got != want {
			t.Errorf("GET %s: %s %q, want %q", target, k, got, want)
		}
	}
	return w.Code, w.Body.String(), err
}

func TestPathPage(t *testing.T) {
	u := newTestUI(t)
	lib := u.publish(t, "lib-1.0", []string{"liblib.so"})
	app := u.publish(t, "app-2.0", []string{"bin", "<b>bold</b>"}, lib.HashPart, catalogtest.HashPart("absent"))
	page := func(hash string) (int, string, error) {
		return get(t, func(w http.ResponseWriter, r *http.Request) error { return u.ui.Path(w, r, hash) }, "/x")
	}
	code, body, err := page(app.HashPart)
	if code != 200 || err != nil {
		t.Fatalf("app: %d, %v", code, err)
	}
	for _, want := range []string{
		`<a href="/_cached/ui/path/` + lib.HashPart + `">/nix/store/` + lib.HashPart + `-lib-1.0</a>`,
		catalogtest.HashPart("absent") + `</span> <span class="tag bad">not in the cache</span>`,
		`<dd id="closure">2 paths, 7.8 KiB <span class="tag bad">1 reference not in the cache</span>`,
		"<li>test-1:c2lnbmF0dXJl</li>", "<li>test-2:b3RoZXI=</li>",
		"&lt;b&gt;bold&lt;/b&gt;", "1000 B (zstd)",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("app's page has no %q:\n%s", want, body)
		}
	}

	// A listing blob that storage lost is said, not a failure.
	gone := u.publish(t, "gone-1", nil)
	code, body, err = page(gone.HashPart)
	if code != 200 || err != nil || !strings.Contains(body, `<p class="note warn" id="listing-problem">The listing is missing from storage.</p>`) {
		t.Errorf("a lost listing: %d, %v:\n%s", code, err, body)
	}

	for hash, want := range map[string]int{
		catalogtest.HashPart("never"): 404, "nothash": 400, strings.Repeat("e", 32): 400, "": 400,
	} {
		code, body, err := page(hash)
		if code != want || err == nil || !strings.Contains(body, fmt.Sprintf("<h1>%d ", want)) {
			t.Errorf("hash %q: %d, %v, want %d:\n%s", hash, code, err, want, body)
		}
	}

	// A catalog that fails is a 500 that tells nothing of why.
	u.cat.broken = true
	code, body, err = page(app.HashPart)
	if code != 500 || !errors.Is(err, errDown) || strings.Contains(body, errDown.Error()) {
		t.Errorf("catalog down: %d, %v:\n%s", code, err, body)
	}
}

// TestIndexPage checks that the front page shows the summary when it
// may, and its instructions even when the catalog fails.
func TestIndexPage(t *testing.T) {
	u := newTestUI(t)
	u.publish(t, "one", nil)
	p := Index{URL: "http://cache.example", Machine: "cache.example", StorePath: "/nix/store/…-hello", Browse: true}
	index := func(p Index) (int, string, error) {
		return get(t, func(w http.ResponseWriter, r *http.Request) error { return u.ui.ServeIndex(w, r, p) }, "/")
	}
	if code, body, err := index(p); code != 200 || err != nil || !strings.Contains(body, `<b>1</b><span>store paths</span>`) {
		t.Errorf("index: %d, %v:\n%s", code, err, body)
	}
	p.Browse = false
	if _, body, _ := index(p); strings.Contains(body, `id="summary"`) || !strings.Contains(body, "asks for a read token") {
		t.Errorf("index without browsing:\n%s", body)
	}
	// The counts are kept for StatsTTL, then counted again.
	u.publish(t, "two", nil)
	if _, body, _ := index(p); strings.Contains(body, `<b>1</b><span>store paths</span>`) {
		t.Errorf("index without browsing shows the summary:\n%s", body)
	}
	p.Browse = true
	if _, body, _ := index(p); !strings.Contains(body, `<b>1</b><span>store paths</span>`) {
		t.Errorf("index within StatsTTL: not the counts kept:\n%s", body)
	}
	*u.clock = u.clock.Add(StatsTTL)
	if _, body, _ := index(p); !strings.Contains(body, `<b>2</b><span>store paths</span>`) {
		t.Errorf("index after StatsTTL: not counted again:\n%s", body)
	}
	// Key rollover: the front page says how far re-signing got.
	st := catalog.ResignState{Target: "t", KeyNames: []string{"new-1", "old-1"}, Retired: []string{"older-1"},
		Checked: 1200, Total: 5000, Rewritten: 7, Started: *u.clock}
	if err := u.cat.SaveResignState(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	*u.clock = u.clock.Add(StatsTTL)
	if _, body, _ := index(p); !strings.Contains(body, "<code>new-1</code>, <code>old-1</code>. Retired: <code>older-1</code>. Re-signing every path: 1,200 of 5,000 checked, 7 rewritten.") {
		t.Errorf("index during a key rollover:\n%s", body)
	}
	st.Completed, st.Checked = *u.clock, 5000
	if err := u.cat.SaveResignState(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	*u.clock = u.clock.Add(StatsTTL)
	if _, body, _ := index(p); !strings.Contains(body, "Every path is signed by these keys (re-signing completed") {
		t.Errorf("index after a key rollover:\n%s", body)
	}
	*u.clock = u.clock.Add(StatsTTL)
	u.cat.broken = true
	code, body, err := index(p)
	if code != 200 || err != nil || !strings.Contains(body, "The catalog could not be read") ||
		!strings.Contains(body, "cached use http://cache.example") {
		t.Errorf("index with the catalog down: %d, %v:\n%s", code, err, body)
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 10 << 20: "10.0 MiB",
		200 << 30: "200 GiB", 3 << 40: "3.0 TiB", 1 << 62: "4.0 EiB",
	} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1234: "-1,234"} {
		if got := count(n); got != want {
			t.Errorf("count(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestChart(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	// No collection: one point, in the middle.
	c := newChart(nil, catalog.Stats{Paths: 7, Bytes: 3 << 30}, now)
	if !c.OnlyNow || len(c.Dots) != 1 || c.Dots[0].X != (plotLeft+plotRight)/2 || c.Dots[0].YBytes < plotTop {
		t.Errorf("no runs: %+v", c)
	}
	runs := []catalog.GCRun{ // newest first
		{Started: now.Add(-time.Hour), Finished: now.Add(-time.Hour), LivePaths: 50, LiveBytes: 4 << 30},
		{Started: now.Add(-2 * time.Hour), Finished: now.Add(-2 * time.Hour), Error: "failed"},
		{Started: now.Add(-25 * time.Hour), Finished: now.Add(-24 * time.Hour), LivePaths: 100, LiveBytes: 8 << 30},
	}
	c = newChart(runs, catalog.Stats{Paths: 60, Bytes: 5 << 30}, now)
	if c.OnlyNow || len(c.Dots) != 3 {
		t.Fatalf("runs: %d points, want 3 (the failed run left out)", len(c.Dots))
	}
	// Oldest at the left edge, now at the right one; the highest at the top.
	if c.Dots[0].X != plotLeft || c.Dots[2].X != plotRight || c.NowX != plotRight {
		t.Errorf("x: %v %v, now %v", c.Dots[0].X, c.Dots[2].X, c.NowX)
	}
	if c.Dots[0].YBytes != plotTop || c.Dots[0].YPaths != plotTop {
		t.Errorf("the largest point is at %v, %v; want the top %v", c.Dots[0].YBytes, c.Dots[0].YPaths, float64(plotTop))
	}
	if got := c.YTicks[len(c.YTicks)-1]; got.Bytes != "8.0 GiB" || got.Paths != "100" {
		t.Errorf("top tick %+v", got)
	}
	if !strings.HasPrefix(c.Dots[2].Title, "now: 5.0 GiB, 60 paths") {
		t.Errorf("title %q", c.Dots[2].Title)
	}
	for v, want := range map[float64]float64{0: 1, 1: 1, 3: 4, 5: 8, 9: 10, 10: 10, 11: 20, 999: 1000} {
		if got := niceCeil(v, 10); got != want {
			t.Errorf("niceCeil(%v) = %v, want %v", v, got, want)
		}
	}
	if got := niceCeil(3<<30, 1024); got != 4<<30 {
		t.Errorf("niceCeil(3 GiB) = %v, want 4 GiB", got)
	}
}
