package infocache

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/catalog/catalogtest"
	"github.com/nix-cached/cached/catalog/sqlite"
)

// The wrapper is a catalog like any other: the whole conformance suite
// runs through it.
func TestConformance(t *testing.T) {
	catalogtest.Run(t, func(t *testing.T) catalog.Catalog {
		return wrap(t, openSQLite(t, filepath.Join(t.TempDir(), "c.db")), Options{})
	})
}

func openSQLite(t *testing.T, path string) *sqlite.Catalog {
	t.Helper()
	c, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wrap starts a cache that does not poll by itself (the tests call poll)
// unless opt.Poll says otherwise.
func wrap(t *testing.T, cat catalog.Catalog, opt Options) *Catalog {
	t.Helper()
	if opt.Poll == 0 {
		opt.Poll = time.Hour
	}
	opt.Logger = slog.New(slog.DiscardHandler)
	return New(context.Background(), cat, opt)
}

// twoProcesses opens one database twice: a cache over the first handle,
// and a plain second handle standing for another process (a replica, or
// `cached gc`).
func twoProcesses(t *testing.T, opt Options) (*Catalog, catalog.Catalog) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c.db")
	c := wrap(t, openSQLite(t, path), opt)
	other := openSQLite(t, path)
	t.Cleanup(func() {
		c.Close()
		other.Close()
	})
	return c, other
}

// publish records a NAR and a path named by seed through cat, with sig in
// its narinfo; it returns the hash part.
func publish(t *testing.T, cat catalog.Catalog, seed, sig string) string {
	t.Helper()
	ctx := context.Background()
	hash := catalogtest.HashPart(seed)
	fh := catalogtest.FakeHash("file:"+seed, 52)
	narHash := "sha256:" + catalogtest.FakeHash("nar:"+seed, 52)
	n := catalog.NAR{Key: "nar/" + fh + ".nar.zst", Compression: "zstd", FileHash: "sha256:" + fh,
		FileSize: 10, NarHash: narHash, NarSize: 20, CreatedAt: time.Now()}
	if err := cat.PutNAR(ctx, n); err != nil {
		t.Fatal(err)
	}
	p := catalog.Path{HashPart: hash, StorePath: "/nix/store/" + hash + "-" + seed, NARKey: n.Key,
		NarHash: narHash, NarSize: 20, NarInfo: "StorePath: /nix/store/" + hash + "-" + seed + "\nSig: " + sig + "\n",
		CreatedAt: time.Now()}
	if err := cat.Publish(ctx, p, catalog.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	return hash
}

func deletePath(t *testing.T, cat catalog.Catalog, hash string) {
	t.Helper()
	if _, err := cat.DeletePath(context.Background(), hash, catalog.DeleteCondition{}); err != nil {
		t.Fatal(err)
	}
}

// narInfo returns what c answers for hash ("" for not found).
func narInfo(t *testing.T, c catalog.Catalog, hash string) string {
	t.Helper()
	text, err := c.NarInfo(context.Background(), hash)
	if errors.Is(err, catalog.ErrNotFound) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return text
}

func TestAnswersFromMemory(t *testing.T) {
	c, other := twoProcesses(t, Options{})
	hash := publish(t, other, "a", "one")
	missing := catalogtest.HashPart("never")
	c.poll(context.Background())
	want := narInfo(t, other, hash)
	for range 3 {
		if got := narInfo(t, c, hash); got != want {
			t.Fatalf("NarInfo = %q, want %q", got, want)
		}
		if got := narInfo(t, c, missing); got != "" {
			t.Fatalf("NarInfo of an unknown hash = %q", got)
		}
	}
	if s := c.CacheStats(); s.Hits != 4 || s.Misses != 2 || s.Entries != 2 {
		t.Errorf("stats %+v, want 4 hits, 2 misses (the first asks), 2 entries", s)
	}
}

// What another process changes is served stale until the change log is
// read, and forgotten then: a deletion, a new path where a miss was
// remembered, and a re-push with a new signature.
func TestFollowsOtherProcesses(t *testing.T) {
	ctx := context.Background()
	c, other := twoProcesses(t, Options{})
	gone := publish(t, other, "gone", "one")
	resigned := publish(t, other, "resigned", "one")
	late := catalogtest.HashPart("late")
	for _, h := range []string{gone, resigned, late} {
		narInfo(t, c, h) // remembered
	}
	deletePath(t, other, gone)
	publish(t, other, "resigned", "two")
	publish(t, other, "late", "one")
	// Not read yet: memory still answers (this is what BlobGrace covers).
	if narInfo(t, c, gone) == "" || narInfo(t, c, late) != "" {
		t.Fatal("the cache read the database before it read the change log")
	}
	c.poll(ctx)
	if got := narInfo(t, c, gone); got != "" {
		t.Errorf("a path deleted elsewhere is still served: %q", got)
	}
	if got, want := narInfo(t, c, resigned), narInfo(t, other, resigned); got != want {
		t.Errorf("re-pushed narinfo = %q, want %q", got, want)
	}
	if narInfo(t, c, late) == "" {
		t.Error("a path published elsewhere after a remembered miss is not served")
	}
}

// What goes through the cache itself is forgotten at once.
func TestForgetsOwnWrites(t *testing.T) {
	c, _ := twoProcesses(t, Options{})
	hash := catalogtest.HashPart("own")
	if narInfo(t, c, hash) != "" {
		t.Fatal("found before publication")
	}
	publish(t, c, "own", "one")
	if narInfo(t, c, hash) == "" {
		t.Fatal("own publication not seen")
	}
	deletePath(t, c, hash)
	if got := narInfo(t, c, hash); got != "" {
		t.Fatalf("own deletion not seen: %q", got)
	}
	other := publish(t, c, "other", "one")
	narInfo(t, c, other)
	res, err := c.DeletePaths(context.Background(), []string{other}, catalog.DeleteCondition{})
	if err != nil || res[0].Err != nil {
		t.Fatal(err, res)
	}
	if got := narInfo(t, c, other); got != "" {
		t.Fatalf("own DeletePaths not seen: %q", got)
	}
}

// A database answer that raced with a forgotten change is not kept.
func TestRacingAnswerNotKept(t *testing.T) {
	c, other := twoProcesses(t, Options{})
	hash := publish(t, other, "race", "one")
	c.mu.Lock()
	epoch := c.epoch
	c.mu.Unlock()
	c.forget([]string{hash}) // a change was applied while the query ran
	c.remember(hash, entry{text: "stale"}, epoch)
	if got := narInfo(t, c, hash); got == "stale" {
		t.Fatal("an answer older than a forgotten change was kept")
	}
}

// failingLog is a catalog whose change log cannot be read.
type failingLog struct {
	catalog.Catalog
	fail bool
}

func (f *failingLog) Changes(ctx context.Context, after int64, limit int) ([]catalog.Change, error) {
	if f.fail {
		return nil, errors.New("database unreachable")
	}
	return f.Catalog.Changes(ctx, after, limit)
}

// Without the change log for catalog.MaxNarInfoAge, answers come from the
// database again; once it is read, from memory again.
func TestStaleWithoutTheLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	inner := &failingLog{Catalog: openSQLite(t, path)}
	c := wrap(t, inner, Options{})
	defer c.Close()
	other := openSQLite(t, path)
	defer other.Close()
	hash := publish(t, other, "stale", "one")
	narInfo(t, c, hash)
	inner.fail = true
	c.poll(context.Background())
	deletePath(t, other, hash)
	if narInfo(t, c, hash) == "" {
		t.Fatal("answered from the database within MaxNarInfoAge")
	}
	time.Sleep(catalog.MaxNarInfoAge + 100*time.Millisecond)
	c.poll(context.Background()) // fails again
	if got := narInfo(t, c, hash); got != "" {
		t.Fatalf("served %q from memory without the change log for %v", got, catalog.MaxNarInfoAge)
	}
	inner.fail = false
	c.poll(context.Background())
	publish(t, other, "fresh", "one")
	fresh := catalogtest.HashPart("fresh")
	narInfo(t, c, fresh)
	before := c.CacheStats().Hits
	narInfo(t, c, fresh)
	if c.CacheStats().Hits != before+1 {
		t.Error("not answering from memory after the log could be read again")
	}
}

// After too long without the log, the cache starts over: it forgets all
// and follows from the log's end.
func TestStartsOver(t *testing.T) {
	c, other := twoProcesses(t, Options{})
	hash := publish(t, other, "over", "one")
	narInfo(t, c, hash)
	c.fresh.Store(int64(c.now() - forgetAfter - time.Second))
	deletePath(t, other, hash)
	publish(t, other, "more", "one")
	c.poll(context.Background())
	if s := c.CacheStats(); s.Entries != 0 {
		t.Errorf("%d entries kept after starting over", s.Entries)
	}
	last, err := other.LastChange(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c.seq != last {
		t.Errorf("following from %d, want the log's end %d", c.seq, last)
	}
	if narInfo(t, c, hash) != "" {
		t.Error("a deleted path is served after starting over")
	}
}

// Memory stays within MaxBytes, and the entries used keep being served.
func TestBounded(t *testing.T) {
	c, other := twoProcesses(t, Options{MaxBytes: 4096})
	hot := publish(t, other, "hot", "one")
	want := narInfo(t, other, hot)
	for i := range 200 {
		narInfo(t, c, catalogtest.FakeHash(string(rune('a'+i%26))+string(rune('a'+i/26)), 32))
		if got := narInfo(t, c, hot); got != want {
			t.Fatalf("hot entry = %q, want %q", got, want)
		}
	}
	s := c.CacheStats()
	c.mu.Lock()
	var total int64
	for _, m := range []map[string]entry{c.cur, c.old} {
		for h, e := range m {
			total += e.size(h)
		}
	}
	c.mu.Unlock()
	if total > 4096 {
		t.Errorf("entries take %d bytes, over the 4096 allowed (%+v)", total, s)
	}
	if s.Entries >= 200 {
		t.Errorf("%d entries kept with a 4096-byte budget", s.Entries)
	}
}

// The poller runs by itself.
func TestPollsByItself(t *testing.T) {
	c, other := twoProcesses(t, Options{Poll: 10 * time.Millisecond})
	hash := publish(t, other, "auto", "one")
	narInfo(t, c, hash)
	deletePath(t, other, hash)
	deadline := time.Now().Add(5 * time.Second)
	for narInfo(t, c, hash) != "" {
		if time.Now().After(deadline) {
			t.Fatal("the deletion was not seen within 5s of polling every 10ms")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
