package server

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nix-cached/cached/auth"
	"github.com/nix-cached/cached/catalog/infocache"
	"github.com/nix-cached/cached/catalog/sqlite"
	"github.com/nix-cached/cached/catalog/synth"
	"github.com/nix-cached/cached/ingest"
	"github.com/nix-cached/cached/storage/disk"
	"github.com/nix-cached/cached/usage"
)

// largeBenchEnv names the SQLite file of the million-path narinfo
// benchmark; the benchmark fills it the first time (minutes) and reuses it
// after. Unset, that case is skipped.
const largeBenchEnv = "CACHED_BENCH_LARGE"

// BenchmarkNarInfoHit serves narinfo hits as `cached serve` does: through
// the in-memory narinfo cache (its default size) over a SQLite catalog of
// synthetic paths, recording uses and formatting a log line per request.
// The hashes asked are 100,000 drawn at random from the catalog, as
// bench/compare asks them, so a million-path catalog does not fit in the
// cache. CACHED_BENCH_LARGE=/tmp/cached-bench-1m.db adds that case.
func BenchmarkNarInfoHit(b *testing.B) {
	b.Run("paths=1000", func(b *testing.B) {
		db := filepath.Join(b.TempDir(), "cached.db")
		benchNarInfoHit(b, db, fillBench(b, db, 1000))
	})
	b.Run("paths=1000000", func(b *testing.B) {
		db := os.Getenv(largeBenchEnv)
		if db == "" {
			b.Skip(largeBenchEnv + " names no database file")
		}
		benchNarInfoHit(b, db, largeBenchHashes(b, db))
	})
}

// fillBench creates the catalog at db with n synthetic paths and returns
// their hash parts.
func fillBench(b *testing.B, db string, n int) []string {
	b.Helper()
	ctx := context.Background()
	c, err := sqlite.Open(ctx, db)
	if err != nil {
		b.Fatal(err)
	}
	c.Close()
	res, err := synth.FillSQLite(ctx, db, synth.Options{
		Paths: n, Rand: rand.New(rand.NewPCG(1, 2)), Now: time.Now(), Spread: 2 * 365 * 24 * time.Hour,
	})
	if err != nil {
		b.Fatal(err)
	}
	return res.Hashes
}

// largeBenchHashes returns the hash parts of the million-path catalog at
// db, filling it first if it does not exist.
func largeBenchHashes(b *testing.B, db string) []string {
	b.Helper()
	if _, err := os.Stat(db); os.IsNotExist(err) {
		b.Logf("filling %s with 1,000,000 paths (minutes; kept for the next run)", db)
		return fillBench(b, db, 1_000_000)
	}
	h, err := sql.Open("sqlite3", "file:"+db+"?mode=ro")
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	rows, err := h.Query(`SELECT hash_part FROM paths`)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	var hashes []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			b.Fatal(err)
		}
		hashes = append(hashes, s)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	return hashes
}

// discardWriter is a ResponseWriter that keeps nothing but the status;
// like net/http's, it writes strings without copying them.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header               { return w.h }
func (w *discardWriter) WriteHeader(code int)              { w.code = code }
func (w *discardWriter) Write(p []byte) (int, error)       { return len(p), nil }
func (w *discardWriter) WriteString(s string) (int, error) { return len(s), nil }

func benchNarInfoHit(b *testing.B, db string, hashes []string) {
	ctx := context.Background()
	sc, err := sqlite.Open(ctx, db)
	if err != nil {
		b.Fatal(err)
	}
	cat := infocache.New(ctx, sc, infocache.Options{Logger: slog.New(slog.DiscardHandler)})
	b.Cleanup(func() { cat.Close() })
	store, err := disk.New(filepath.Join(b.TempDir(), "blobs"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	ing, err := ingest.New(store, cat, ingest.Options{})
	if err != nil {
		b.Fatal(err)
	}
	rec := usage.New(cat, nil, slog.New(slog.DiscardHandler))
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { rec.Run(rctx, 5*time.Second); close(done) }()
	b.Cleanup(func() { stop(); <-done })
	s, err := New(Config{Usage: rec, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
		cat, store, ing, auth.New(auth.Config{PublicRead: true}, cat))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Wait)

	r := rand.New(rand.NewPCG(3, 4))
	reqs := make([]*http.Request, 100_000)
	for i := range reqs {
		reqs[i] = httptest.NewRequest(http.MethodGet, "/"+hashes[r.IntN(len(hashes))]+".narinfo", nil)
	}
	serve := func(b *testing.B, i int) bool {
		w := &discardWriter{h: make(http.Header, 4)}
		s.ServeHTTP(w, reqs[i%len(reqs)])
		if w.code != http.StatusOK {
			b.Errorf("GET %s: %d, want 200", reqs[i%len(reqs)].URL.Path, w.code)
			return false
		}
		return true
	}
	for i := range reqs { // as after the first seconds of a wrk run
		if !serve(b, i) {
			return
		}
	}
	report := func(b *testing.B, before infocache.Stats) {
		st := cat.CacheStats()
		if n := st.Hits + st.Misses - before.Hits - before.Misses; n > 0 {
			b.ReportMetric(float64(st.Hits-before.Hits)/float64(n), "cache-hits/op")
		}
	}
	b.Run("serial", func(b *testing.B) {
		before := cat.CacheStats()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if !serve(b, i) {
				return
			}
			i++
		}
		report(b, before)
	})
	b.Run("parallel", func(b *testing.B) {
		before := cat.CacheStats()
		var next atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if !serve(b, int(next.Add(1))) {
					return
				}
			}
		})
		report(b, before)
	})
}
