package metrics

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestEndpointObserve(t *testing.T) {
	m, reg := newTest(t)
	get := m.Endpoint("/nar/{file}", "GET")
	put := m.Endpoint("/nar/{file}", "PUT")
	if n, _ := testutil.GatherAndCount(reg, "cached_http_requests_total", "cached_http_request_duration_seconds"); n != 0 {
		t.Errorf("%d series before any request, want none", n)
	}
	get.Observe(200, 3*time.Millisecond, 0, 1000)
	get.Observe(200, 70*time.Millisecond, 0, 500)
	get.Observe(418, time.Millisecond, 0, 10) // not a known code: the slow path
	get.Observe(42, time.Millisecond, 0, 0)   // nonsense
	put.Observe(204, 2*time.Second, 4096, 0)
	m.Endpoint("/", "BREW").Observe(405, time.Millisecond, 0, 0)
	m.Unmatched("GET").Observe(404, time.Microsecond, 0, 10)
	m.Unmatched("PROPFIND").Observe(405, time.Microsecond, 0, 10)

	want := `
# HELP cached_http_requests_total HTTP requests answered, by route pattern, method and status code.
# TYPE cached_http_requests_total counter
cached_http_requests_total{code="200",method="GET",route="/nar/{file}"} 2
cached_http_requests_total{code="418",method="GET",route="/nar/{file}"} 1
cached_http_requests_total{code="other",method="GET",route="/nar/{file}"} 1
cached_http_requests_total{code="204",method="PUT",route="/nar/{file}"} 1
cached_http_requests_total{code="405",method="OTHER",route="/"} 1
cached_http_requests_total{code="404",method="GET",route="unmatched"} 1
cached_http_requests_total{code="405",method="OTHER",route="unmatched"} 1
# HELP cached_http_request_bytes_total Request body bytes read, as sent on the wire, by route pattern.
# TYPE cached_http_request_bytes_total counter
cached_http_request_bytes_total{route="/nar/{file}"} 4096
# HELP cached_http_response_bytes_total Response body bytes written, sendfile included, by route pattern.
# TYPE cached_http_response_bytes_total counter
cached_http_response_bytes_total{route="/"} 0
cached_http_response_bytes_total{route="/nar/{file}"} 1510
cached_http_response_bytes_total{route="unmatched"} 20
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "cached_http_requests_total",
		"cached_http_request_bytes_total", "cached_http_response_bytes_total"); err != nil {
		t.Error(err)
	}

	// Two GET requests in the 5 ms and 100 ms buckets, two of 1 ms.
	h, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var cum map[float64]uint64
	for _, f := range h {
		if f.GetName() != "cached_http_request_duration_seconds" {
			continue
		}
		for _, s := range f.GetMetric() {
			if hasLabel(s.GetLabel(), "route", "/nar/{file}") && hasLabel(s.GetLabel(), "method", "GET") {
				cum = map[float64]uint64{}
				for _, b := range s.GetHistogram().GetBucket() {
					cum[b.GetUpperBound()] = b.GetCumulativeCount()
				}
				if s.GetHistogram().GetSampleCount() != 4 {
					t.Errorf("GET duration count %d, want 4", s.GetHistogram().GetSampleCount())
				}
			}
		}
	}
	for bound, want := range map[float64]uint64{0.0001: 0, 0.001: 2, 0.0025: 2, 0.005: 3, 0.05: 3, 0.1: 4, 60: 4} {
		if cum[bound] != want {
			t.Errorf("bucket le=%v: %d, want %d", bound, cum[bound], want)
		}
	}
}

// hasLabel reports whether labels has name=value.
func hasLabel[L interface {
	GetName() string
	GetValue() string
}](labels []L, name, value string) bool {
	for _, l := range labels {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

// TestEndpointConcurrent has the lazily created series race (run with
// -race): every observation must still be counted once.
func TestEndpointConcurrent(t *testing.T) {
	m, reg := newTest(t)
	ep := m.Endpoint("/{hash}.narinfo", "GET")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				ep.Observe([]int{200, 404, 418}[(g+i)%3], time.Millisecond, int64(i%2), 10)
			}
		})
	}
	wg.Wait()
	if n, err := testutil.GatherAndCount(reg, "cached_http_requests_total"); err != nil || n != 3 {
		t.Errorf("%d request series (%v), want 3", n, err)
	}
	for name, want := range map[string]float64{
		"cached_http_requests_total":       800,
		"cached_http_response_bytes_total": 8000,
		"cached_http_request_bytes_total":  400,
	} {
		fams, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var got float64
		for _, f := range fams {
			if f.GetName() == name {
				for _, s := range f.GetMetric() {
					got += s.GetCounter().GetValue()
				}
			}
		}
		if got != want {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
	}
}

func TestBuckets(t *testing.T) {
	if durationBuckets[0] != 0.0001 || durationBuckets[len(durationBuckets)-1] != 60 {
		t.Errorf("buckets span %v..%v, want 100µs..60s", durationBuckets[0], durationBuckets[len(durationBuckets)-1])
	}
	for i := 1; i < len(durationBuckets); i++ {
		if durationBuckets[i] <= durationBuckets[i-1] {
			t.Errorf("buckets not increasing at %d: %v", i, durationBuckets)
		}
	}
}

func TestNarInfo(t *testing.T) {
	m, _ := newTest(t)
	m.NarInfo(true)
	m.NarInfo(true)
	m.NarInfo(false)
	if hit, miss := testutil.ToFloat64(m.narinfo[1]), testutil.ToFloat64(m.narinfo[0]); hit != 2 || miss != 1 {
		t.Errorf("hits %v, misses %v; want 2, 1", hit, miss)
	}
}

// BenchmarkObserve is the cost metrics add to a request.
func BenchmarkObserve(b *testing.B) {
	m, err := New(nil)
	if err != nil {
		b.Fatal(err)
	}
	ep := m.Endpoint("/{hash}.narinfo", "GET")
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ep.Observe(200, 150*time.Microsecond, 0, 600)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				ep.Observe(200, 150*time.Microsecond, 0, 600)
			}
		})
	})
}
