package server

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nix-cached/cached/metrics"
)

// newMetricsBenchEnv is newBenchEnv with metrics on.
func newMetricsBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	p := newParts(b, true, io.Discard)
	m, err := metrics.New(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	cfg := p.s.cfg
	cfg.Metrics = m
	s, err := New(cfg, p.cat, p.store, p.ing, p.s.auth)
	if err != nil {
		b.Fatal(err)
	}
	e := &benchEnv{s: s, ing: p.ing, store: p.store}
	e.ts = httptest.NewUnstartedServer(s)
	e.ts.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			e.conns.Add(1)
		}
	}
	e.ts.Start()
	b.Cleanup(e.ts.Close)
	return e
}

// BenchmarkNarInfoGetMetrics is BenchmarkNarInfoGet's in-process and
// single-connection cases with metrics on: the difference is their cost.
func BenchmarkNarInfoGetMetrics(b *testing.B) {
	e := newMetricsBenchEnv(b)
	hashes := e.publish(b, benchPaths)
	reqs := make([]*http.Request, len(hashes))
	for i, h := range hashes {
		reqs[i] = httptest.NewRequest(http.MethodGet, "/"+h+".narinfo", nil)
	}
	miss := httptest.NewRequest(http.MethodGet, "/"+missHash+".narinfo", nil)
	serve := func(b *testing.B, req *http.Request, want int) {
		rec := httptest.NewRecorder()
		e.s.ServeHTTP(rec, req)
		if rec.Code != want {
			b.Fatalf("GET %s: %d, want %d", req.URL.Path, rec.Code, want)
		}
	}
	b.Run("hit", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			serve(b, reqs[i%len(reqs)], http.StatusOK)
			i++
		}
	})
	b.Run("miss", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			serve(b, miss, http.StatusNotFound)
		}
	})
	b.Run("hit-parallel", func(b *testing.B) {
		var next atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				rec := httptest.NewRecorder()
				req := reqs[int(next.Add(1))%len(reqs)]
				e.s.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Errorf("GET %s: %d, want 200", req.URL.Path, rec.Code)
					return
				}
			}
		})
	})
	b.Run("hit-tcp", func(b *testing.B) {
		c := e.client(b, 1)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := get(c, e.ts.URL+reqs[i%len(reqs)].URL.Path, http.StatusOK); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
