package metrics

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/nix-cached/cached/gc"
)

// newTest returns metrics on a new registry, with a fixed clock.
func newTest(t *testing.T) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.now = func() time.Time { return time.Unix(1700000000, 500e6) }
	return m, reg
}

func TestNewRegisters(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := New(reg); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg, "go_goroutines", "process_cpu_seconds_total", "cached_gc_runs_total"); err != nil || n != 5 {
		t.Errorf("gathered %d series (%v), want go_goroutines, process_cpu_seconds_total and 3 GC results", n, err)
	}
	if _, err := New(reg); !errors.Is(err, ErrRegistration) {
		t.Errorf("second New on one registry: %v, want ErrRegistration", err)
	}
	// The registry is usable after the failure: nothing half-registered.
	if _, err := reg.Gather(); err != nil {
		t.Error(err)
	}
}

func TestNewOnRegistryWithRuntimeCollectors(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(collectors.NewGoCollector())
	m, err := New(reg)
	if err != nil {
		t.Fatalf("New on a registry that has the Go collector: %v", err)
	}
	if m.Gatherer() != prometheus.Gatherer(reg) {
		t.Error("Gatherer is not the registry New was given")
	}
	if _, err := reg.Gather(); err != nil {
		t.Errorf("pedantic gather: %v", err)
	}
}

// registerer is a Registerer that cannot gather.
type registerer struct{ prometheus.Registerer }

func TestNewWithoutGatherer(t *testing.T) {
	m, err := New(registerer{prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	m.NarInfo(true)
	if n, err := testutil.GatherAndCount(m.Gatherer(), "cached_narinfo_requests_total"); err != nil || n != 2 {
		t.Errorf("own gatherer: %d narinfo series (%v), want 2", n, err)
	}
	if _, err := New(nil); err != nil {
		t.Errorf("New(nil): %v", err)
	}
}

func TestGCRun(t *testing.T) {
	m, reg := newTest(t)
	ok := gc.Result{Removed: 3, NARsRemoved: 2, BytesRemoved: 4096}
	ok.LivePaths, ok.LiveBytes = 10, 1<<20
	m.GCRun(ok, nil, 1500*time.Millisecond)
	m.GCRun(gc.Result{Removed: 1, BytesRemoved: 100}, errors.New("gc: catalog gone"), 2*time.Second)
	m.GCRun(gc.Result{}, fmt.Errorf("scheduled: %w", gc.ErrLocked), time.Millisecond)
	want := `
# HELP cached_gc_runs_total Garbage collection attempts: ok, failed, or skipped because another collection held the lock.
# TYPE cached_gc_runs_total counter
cached_gc_runs_total{result="failed"} 1
cached_gc_runs_total{result="ok"} 1
cached_gc_runs_total{result="skipped"} 1
# HELP cached_gc_paths_removed_total Store paths removed by garbage collection.
# TYPE cached_gc_paths_removed_total counter
cached_gc_paths_removed_total 4
# HELP cached_gc_bytes_freed_total NAR and listing bytes deleted from storage by garbage collection.
# TYPE cached_gc_bytes_freed_total counter
cached_gc_bytes_freed_total 4196
# HELP cached_gc_last_run_timestamp_seconds Unix time at which the last garbage collection this process ran (ok or failed) ended (cached_gc_recorded_*: wherever it ran).
# TYPE cached_gc_last_run_timestamp_seconds gauge
cached_gc_last_run_timestamp_seconds 1.7000000005e+09
# HELP cached_gc_last_duration_seconds How long the last garbage collection this process ran (ok or failed) took.
# TYPE cached_gc_last_duration_seconds gauge
cached_gc_last_duration_seconds 2
# HELP cached_gc_live_paths Store paths kept by the last successful garbage collection this process ran.
# TYPE cached_gc_live_paths gauge
cached_gc_live_paths 10
# HELP cached_gc_live_bytes Bytes of the NAR files kept by the last successful garbage collection this process ran.
# TYPE cached_gc_live_bytes gauge
cached_gc_live_bytes 1.048576e+06
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"cached_gc_runs_total", "cached_gc_paths_removed_total", "cached_gc_bytes_freed_total",
		"cached_gc_last_run_timestamp_seconds", "cached_gc_last_duration_seconds",
		"cached_gc_live_paths", "cached_gc_live_bytes"); err != nil {
		t.Error(err)
	}
}

func TestSweep(t *testing.T) {
	m, reg := newTest(t)
	m.Sweep(gc.SweepResult{NARs: 2, Blobs: 1, Bytes: 300}, nil)
	m.Sweep(gc.SweepResult{NARs: 1, Bytes: 50}, errors.New("gc: storage gone"))
	m.Sweep(gc.SweepResult{}, gc.ErrLocked)
	want := `
# HELP cached_sweep_runs_total Sweeps of unclaimed uploads: ok, failed, or skipped because a collection held the lock.
# TYPE cached_sweep_runs_total counter
cached_sweep_runs_total{result="failed"} 1
cached_sweep_runs_total{result="ok"} 1
cached_sweep_runs_total{result="skipped"} 1
# HELP cached_sweep_nars_removed_total Unclaimed NAR uploads removed after their lease.
# TYPE cached_sweep_nars_removed_total counter
cached_sweep_nars_removed_total 3
# HELP cached_sweep_blobs_removed_total Orphan blobs (named by no record) removed.
# TYPE cached_sweep_blobs_removed_total counter
cached_sweep_blobs_removed_total 1
# HELP cached_sweep_bytes_freed_total Bytes deleted from storage by sweeps of unclaimed uploads.
# TYPE cached_sweep_bytes_freed_total counter
cached_sweep_bytes_freed_total 350
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"cached_sweep_runs_total", "cached_sweep_nars_removed_total",
		"cached_sweep_blobs_removed_total", "cached_sweep_bytes_freed_total"); err != nil {
		t.Error(err)
	}
}

func TestUploads(t *testing.T) {
	m, _ := newTest(t)
	m.UploadAccepted(KindNAR)
	m.UploadAccepted(KindNAR)
	m.UploadRejected(KindNarInfo, ReasonMissingReferences)
	m.UploadRejected(KindNAR, ReasonHashMismatch)
	m.UploadFailed(KindLog)
	m.UploadAccepted(numKinds) // out of range: ignored
	for _, c := range []struct {
		c    prometheus.Collector
		want float64
	}{
		{m.uploads[KindNAR][uploadAccepted], 2},
		{m.uploads[KindNAR][uploadRejected], 1},
		{m.uploads[KindNarInfo][uploadRejected], 1},
		{m.uploads[KindLog][uploadError], 1},
		{m.uploads[KindDebugInfo][uploadAccepted], 0},
		{m.rejections.WithLabelValues("narinfo", "missing-references"), 1},
		{m.rejections.WithLabelValues("nar", "hash-mismatch"), 1},
	} {
		if got := testutil.ToFloat64(c.c); got != c.want {
			t.Errorf("%v: %v, want %v", c.c.(prometheus.Metric).Desc(), got, c.want)
		}
	}
	if n := testutil.CollectAndCount(m.rejections); n != 2 {
		t.Errorf("%d rejection series, want 2", n)
	}
}

func TestLabels(t *testing.T) {
	kinds := map[string]bool{}
	for k := range numKinds {
		kinds[k.String()] = true
	}
	reasons := map[string]bool{}
	for r := range numReasons {
		reasons[r.String()] = true
	}
	if len(kinds) != int(numKinds) || len(reasons) != int(numReasons) || kinds[""] || reasons[""] {
		t.Errorf("labels not distinct and non-empty: %v %v", kinds, reasons)
	}
	for _, c := range []struct{ got, want string }{
		{KindNAR.String(), "nar"}, {KindDebugInfo.String(), "debuginfo"}, {numKinds.String(), "unknown"},
		{ReasonHashMismatch.String(), "hash-mismatch"}, {ReasonUnauthorized.String(), "unauthorized"},
		{numReasons.String(), "other"},
	} {
		if c.got != c.want {
			t.Errorf("label %q, want %q", c.got, c.want)
		}
	}
}

func TestNilMetrics(t *testing.T) {
	var m *Metrics
	m.NarInfo(true)
	m.UploadAccepted(KindNAR)
	m.UploadRejected(KindNAR, ReasonOther)
	m.UploadFailed(KindNAR)
	m.GCRun(gc.Result{}, nil, time.Second)
	m.Sweep(gc.SweepResult{}, nil)
	if m.Endpoint("/", "GET") != nil || m.Unmatched("GET") != nil {
		t.Error("a nil Metrics returned endpoints")
	}
	m.Endpoint("/", "GET").Observe(200, time.Second, 1, 1)
	if n, err := testutil.GatherAndCount(m.Gatherer()); err != nil || n != 0 {
		t.Errorf("nil Metrics gathers %d series (%v)", n, err)
	}
}

func TestHandler(t *testing.T) {
	m, _ := newTest(t)
	m.Endpoint("/nar/{file}", "GET").Observe(200, 3*time.Millisecond, 0, 1234)
	rec := httptest.NewRecorder()
	m.Handler(nil).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != 200 || rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("GET /metrics: %d, Cache-Control %q", rec.Code, rec.Header().Get("Cache-Control"))
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(io.Reader(rec.Body))
	if err != nil {
		t.Fatal(err)
	}
	out := fams["cached_http_response_bytes_total"].GetMetric()
	if len(out) != 1 || out[0].GetCounter().GetValue() != 1234 {
		t.Errorf("response bytes: %v", out)
	}
}
