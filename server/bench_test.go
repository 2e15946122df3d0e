package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nix-cached/cached/ingest"
	"github.com/nix-cached/cached/nar"
	"github.com/nix-cached/cached/narinfo"
	"github.com/nix-cached/cached/nixbase32"
	"github.com/nix-cached/cached/nixhash"
	"github.com/nix-cached/cached/storage"
)

// benchPaths is how many paths the narinfo benchmarks publish first.
const benchPaths = 10_000

// benchEnv is newEnv for benchmarks: the same disk store, SQLite catalog
// and ingester, with the *Server exposed, public reads, and request logs
// formatted as in production but thrown away.
type benchEnv struct {
	s     *Server
	ing   *ingest.Ingester
	store storage.Store
	ts    *httptest.Server
	conns atomic.Int64 // TCP connections the test server accepted
}

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	p := newParts(b, true, io.Discard)
	e := &benchEnv{s: p.s, ing: p.ing, store: p.store}
	e.ts = httptest.NewUnstartedServer(p.s)
	e.ts.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			e.conns.Add(1)
		}
	}
	e.ts.Start()
	b.Cleanup(e.ts.Close)
	return e
}

// client returns a new keep-alive client that keeps up to streams idle
// connections, so that each benchmark counts the connections it opens.
func (e *benchEnv) client(b *testing.B, streams int) *http.Client {
	t := e.ts.Client().Transport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = streams
	b.Cleanup(t.CloseIdleConnections)
	return &http.Client{Transport: t}
}

// writeNAR writes to w a NAR holding one regular file of size bytes.
func writeNAR(w io.Writer, contents io.Reader, size int64) error {
	nw := nar.NewWriter(w)
	if err := nw.WriteHeader(&nar.Header{Path: "/", Type: nar.TypeRegular, Size: size}); err != nil {
		return err
	}
	if _, err := io.Copy(nw, contents); err != nil {
		return err
	}
	return nw.Close()
}

// publish ingests n small NARs (a few at a time: the disk store and the
// catalog sync every commit) and then publishes a path for each through
// the Ingester, each referencing the one before. It returns their hash
// parts.
func (e *benchEnv) publish(b *testing.B, n int) []string {
	b.Helper()
	ctx := context.Background()
	type upload struct {
		name string
		sum  [32]byte
		size int
	}
	nars := make([]upload, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range cap(errs) {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				var plain bytes.Buffer
				text := fmt.Sprintf("#!/bin/sh\necho bench path %d\n", i)
				if err := writeNAR(&plain, strings.NewReader(text), int64(len(text))); err != nil {
					errs <- err
					return
				}
				sum := sha256.Sum256(plain.Bytes())
				name := nixbase32.EncodeToString(sum[:]) + ".nar"
				if _, err := e.ing.NAR(ctx, name, bytes.NewReader(plain.Bytes()), int64(plain.Len())); err != nil {
					errs <- fmt.Errorf("NAR %d: %w", i, err)
					return
				}
				nars[i] = upload{name, sum, plain.Len()}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}

	rng := rand.New(rand.NewChaCha8([32]byte{1}))
	hashes := make([]string, n)
	prev := ""
	for i, u := range nars {
		var raw [20]byte
		for j := range raw {
			raw[j] = byte(rng.Uint32())
		}
		hashes[i] = nixbase32.EncodeToString(raw[:])
		base := fmt.Sprintf("%s-bench-%d", hashes[i], i)
		ni := narinfo.NarInfo{
			StorePath: "/nix/store/" + base, URL: "nar/" + u.name, Compression: "none",
			FileHash: nixhash.NewSHA256(u.sum), FileSize: uint64(u.size),
			NarHash: nixhash.NewSHA256(u.sum), NarSize: uint64(u.size),
		}
		if prev != "" {
			ni.References = []string{prev}
		}
		if _, err := e.ing.NarInfo(ctx, hashes[i], []byte(ni.String())); err != nil {
			b.Fatalf("narinfo %d: %v", i, err)
		}
		prev = base
	}
	return hashes
}

// missHash is a valid hash part that is never published.
const missHash = "00000000000000000000000000000000"

func BenchmarkNarInfoGet(b *testing.B) {
	e := newBenchEnv(b)
	hashes := e.publish(b, benchPaths)
	paths := make([]string, len(hashes))
	for i, h := range hashes {
		paths[i] = "/" + h + ".narinfo"
	}
	missPath := "/" + missHash + ".narinfo"
	inProcess := func(path func(i int) string, want int) func(*testing.B) {
		return func(b *testing.B) {
			reqs := make([]*http.Request, len(paths))
			for i := range reqs {
				reqs[i] = httptest.NewRequest(http.MethodGet, path(i), nil)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				rec := httptest.NewRecorder()
				e.s.ServeHTTP(rec, reqs[i%len(reqs)])
				if rec.Code != want {
					b.Fatalf("GET %s: %d, want %d", reqs[i%len(reqs)].URL.Path, rec.Code, want)
				}
				i++
			}
		}
	}
	overTCP := func(path func(i int) string, want int) func(*testing.B) {
		c := e.client(b, 1)
		before := e.conns.Load()
		return func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := get(c, e.ts.URL+path(i), want); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(e.conns.Load()-before), "conns")
		}
	}
	hit := func(i int) string { return paths[i%len(paths)] }
	miss := func(int) string { return missPath }
	b.Run("hit", inProcess(hit, http.StatusOK))
	b.Run("miss", inProcess(miss, http.StatusNotFound))
	b.Run("hit-parallel", func(b *testing.B) {
		// Requests are only read by the handler, so goroutines share them.
		reqs := make([]*http.Request, len(paths))
		for i := range reqs {
			reqs[i] = httptest.NewRequest(http.MethodGet, hit(i), nil)
		}
		var next atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				rec := httptest.NewRecorder()
				e.s.ServeHTTP(rec, reqs[int(next.Add(1))%len(reqs)])
				if rec.Code != http.StatusOK {
					b.Errorf("GET: %d, want 200", rec.Code)
					return
				}
			}
		})
	})
	b.Run("hit-tcp", overTCP(hit, http.StatusOK))
	b.Run("miss-tcp", overTCP(miss, http.StatusNotFound))
	c := e.client(b, runtime.GOMAXPROCS(0))
	before := e.conns.Load()
	b.Run("hit-tcp-parallel", func(b *testing.B) {
		var next atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := get(c, e.ts.URL+hit(int(next.Add(1))), http.StatusOK); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(e.conns.Load()-before), "conns")
	})
}

// get fetches url and reads the whole body, so that the connection is
// reused. It returns the body's length, or an error unless the status is
// want.
func get(c *http.Client, url string, want int) (int64, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return n, fmt.Errorf("GET %s: reading the body: %w", url, err)
	}
	if resp.StatusCode != want {
		return n, fmt.Errorf("GET %s: %d, want %d", url, resp.StatusCode, want)
	}
	return n, nil
}

// storeNAR writes a NAR of one random file of size bytes straight into the
// store, named as ingest names an uncompressed NAR, and returns its URL path.
func (e *benchEnv) storeNAR(b *testing.B, size int64) string {
	b.Helper()
	var seed [32]byte
	seed[0] = byte(size)
	random := io.LimitReader(rand.NewChaCha8(seed), size)
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeNAR(pw, random, size)) }()
	h := sha256.New()
	u, err := e.store.Create(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	defer u.Abort() //nolint:errcheck // no-op after Commit
	if _, err := io.Copy(io.MultiWriter(u, h), pr); err != nil {
		b.Fatal(err)
	}
	name := nixbase32.EncodeToString(h.Sum(nil)) + ".nar"
	if err := u.Commit(context.Background(), "nar/"+name); err != nil {
		b.Fatal(err)
	}
	return "/nar/" + name
}

func BenchmarkNARGet(b *testing.B) {
	e := newBenchEnv(b)
	paths := map[int64]string{} // by NAR size
	for _, tc := range []struct {
		name    string
		size    int64
		streams int
	}{
		{"4KiB/streams=1", 4 << 10, 1}, // a small path: the cost per request
		{"1MiB/streams=1", 1 << 20, 1},
		{"64MiB/streams=1", 64 << 20, 1},
		{"64MiB/streams=4", 64 << 20, 4},
	} {
		c := e.client(b, tc.streams)
		b.Run(tc.name, func(b *testing.B) {
			if paths[tc.size] == "" {
				paths[tc.size] = e.storeNAR(b, tc.size)
			}
			url := e.ts.URL + paths[tc.size]
			size, err := get(c, url, http.StatusOK)
			if err != nil {
				b.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			b.SetBytes(size)
			b.ReportAllocs()
			b.ResetTimer()
			var next atomic.Int64
			var wg sync.WaitGroup
			for range tc.streams {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						if n, err := get(c, url, http.StatusOK); err != nil || n != size {
							b.Errorf("got %d bytes (%v), want %d", n, err, size)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			runtime.ReadMemStats(&after)
			// HeapSys only grows when the heap needs more memory from the
			// OS: a NAR buffered in memory would show here.
			b.ReportMetric(float64(int64(after.HeapSys)-int64(before.HeapSys)), "heapsys-B")
			runtime.GC()
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(b.N), "heap-B/op")
		})
	}
}
