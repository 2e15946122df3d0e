// Package metrics holds the cache's Prometheus metrics: HTTP requests by
// route, narinfo hits and misses, uploads and why they were rejected, and
// garbage collections. Every series is named cached_*, has its unit in its
// name, and only low-cardinality labels (route patterns, never raw paths).
//
// All methods of a nil *Metrics do nothing, so callers need no checks.
package metrics

import (
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ErrRegistration is returned when the collectors cannot be registered.
var ErrRegistration = errors.New("metrics: cannot register collectors")

// durationBuckets are the upper bounds of the request duration histogram,
// in seconds: from a narinfo served from memory to a large NAR upload.
var durationBuckets = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
}

// Metrics records what the server and the garbage collector do.
type Metrics struct {
	gatherer prometheus.Gatherer
	now      func() time.Time // clock of the GC timestamp (tests replace it)

	requests  *prometheus.CounterVec   // route, method, code
	duration  *prometheus.HistogramVec // route, method
	reqBytes  *prometheus.CounterVec   // route
	respBytes *prometheus.CounterVec   // route
	unmatched [numMethods]*Endpoint

	narinfo    [2]prometheus.Counter // miss, hit
	uploads    [numKinds][numUploadResults]prometheus.Counter
	rejections *prometheus.CounterVec // kind, reason

	gcRuns         [numRunResults]prometheus.Counter
	gcPaths        prometheus.Counter
	gcBytes        prometheus.Counter
	gcLastRun      prometheus.Gauge
	gcLastDuration prometheus.Gauge
	gcLivePaths    prometheus.Gauge
	gcLiveBytes    prometheus.Gauge
	sweepRuns      [numRunResults]prometheus.Counter
	sweepNARs      prometheus.Counter
	sweepBlobs     prometheus.Counter
	sweepBytes     prometheus.Counter

	blobsMissing *prometheus.CounterVec // kind
	space        atomic.Pointer[func() (free, capacity int64, ok bool)]
	catalog      atomic.Pointer[catalogReader]
}

// New creates the metrics and registers them with reg. It also registers
// the Go runtime and process collectors unless reg already has them (the
// default registry does), so a new registry gets the usual go_* and
// process_* series too. A nil reg means a new registry of its own.
// Registering twice with one registry fails with ErrRegistration.
func New(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &Metrics{now: time.Now}
	cs := m.build()

	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		var dup prometheus.AlreadyRegisteredError
		if err := reg.Register(c); err != nil && !errors.As(err, &dup) {
			return nil, fmt.Errorf("%w: %w", ErrRegistration, err)
		}
	}
	g, ok := reg.(prometheus.Gatherer)
	if !ok {
		// reg only registers (a wrapper, say): serve our own series.
		own := prometheus.NewRegistry()
		if err := register(own, cs); err != nil {
			return nil, err
		}
		g = own
	}
	if err := register(reg, cs); err != nil {
		return nil, err
	}
	m.gatherer = g
	return m, nil
}

// register registers every collector of cs, undoing it on failure.
func register(reg prometheus.Registerer, cs []prometheus.Collector) error {
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, done := range cs[:i] {
				reg.Unregister(done)
			}
			return fmt.Errorf("%w: %w", ErrRegistration, err)
		}
	}
	return nil
}

// Gatherer returns the registry New registered with, or, if that one
// cannot be gathered, a registry of the cached_* series alone.
func (m *Metrics) Gatherer() prometheus.Gatherer {
	if m == nil {
		return prometheus.Gatherers{}
	}
	return m.gatherer
}

// Handler serves g's metrics in the Prometheus exposition formats; a nil g
// means m.Gatherer(). Responses are never cached.
func (m *Metrics) Handler(g prometheus.Gatherer) http.Handler {
	if g == nil {
		g = m.Gatherer()
	}
	h := promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

// build creates every collector and the series known in advance, and
// returns the collectors.
func (m *Metrics) build() []prometheus.Collector {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cached_http_requests_total",
		Help: "HTTP requests answered, by route pattern, method and status code.",
	}, []string{"route", "method", "code"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "cached_http_request_duration_seconds",
		Help:    "Time from receiving a request to the end of its response, by route pattern and method.",
		Buckets: durationBuckets,
	}, []string{"route", "method"})
	m.reqBytes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cached_http_request_bytes_total",
		Help: "Request body bytes read, as sent on the wire, by route pattern.",
	}, []string{"route"})
	m.respBytes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cached_http_response_bytes_total",
		Help: "Response body bytes written, sendfile included, by route pattern.",
	}, []string{"route"})
	for i := range m.unmatched {
		m.unmatched[i] = m.Endpoint(RouteUnmatched, methodNames[i])
	}

	narinfo := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cached_narinfo_requests_total",
		Help: "GET and HEAD requests of narinfos, by whether the cache has the path.",
	}, []string{"result"})
	m.narinfo[0] = narinfo.WithLabelValues("miss")
	m.narinfo[1] = narinfo.WithLabelValues("hit")

	uploads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cached_uploads_total",
		Help: "Uploads by kind and result: accepted, rejected (the client's fault) or error (the server's, or an aborted transfer).",
	}, []string{"kind", "result"})
	for k := range numKinds {
		for r := range numUploadResults {
			m.uploads[k][r] = uploads.WithLabelValues(k.String(), uploadResults[r])
		}
	}
	m.rejections = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cached_upload_rejections_total",
		Help: "Rejected uploads by kind and reason.",
	}, []string{"kind", "reason"})

	gcRuns := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cached_gc_runs_total",
		Help: "Garbage collection attempts: ok, failed, or skipped because another collection held the lock.",
	}, []string{"result"})
	sweepRuns := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cached_sweep_runs_total",
		Help: "Sweeps of unclaimed uploads: ok, failed, or skipped because a collection held the lock.",
	}, []string{"result"})
	for r := range numRunResults {
		m.gcRuns[r] = gcRuns.WithLabelValues(runResults[r])
		m.sweepRuns[r] = sweepRuns.WithLabelValues(runResults[r])
	}
	m.gcPaths = counter("cached_gc_paths_removed_total", "Store paths removed by garbage collection.")
	m.gcBytes = counter("cached_gc_bytes_freed_total", "NAR and listing bytes deleted from storage by garbage collection.")
	m.gcLastRun = gauge("cached_gc_last_run_timestamp_seconds", "Unix time at which the last garbage collection this process ran (ok or failed) ended (cached_gc_recorded_*: wherever it ran).")
	m.gcLastDuration = gauge("cached_gc_last_duration_seconds", "How long the last garbage collection this process ran (ok or failed) took.")
	m.gcLivePaths = gauge("cached_gc_live_paths", "Store paths kept by the last successful garbage collection this process ran.")
	m.gcLiveBytes = gauge("cached_gc_live_bytes", "Bytes of the NAR files kept by the last successful garbage collection this process ran.")
	m.sweepNARs = counter("cached_sweep_nars_removed_total", "Unclaimed NAR uploads removed after their lease.")
	m.sweepBlobs = counter("cached_sweep_blobs_removed_total", "Orphan blobs (named by no record) removed.")
	m.sweepBytes = counter("cached_sweep_bytes_freed_total", "Bytes deleted from storage by sweeps of unclaimed uploads.")

	m.blobsMissing = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cached_blobs_missing_total",
		Help: "Requests for a blob the catalog records but storage does not have, by kind (nar, ls): answered 5xx (a GET) or 404 (a HEAD, so that the client uploads it again).",
	}, []string{"kind"})
	free, capacity := m.spaceGauges()

	return append([]prometheus.Collector{
		m.requests, m.duration, m.reqBytes, m.respBytes, narinfo, uploads, m.rejections,
		gcRuns, m.gcPaths, m.gcBytes, m.gcLastRun, m.gcLastDuration, m.gcLivePaths, m.gcLiveBytes,
		sweepRuns, m.sweepNARs, m.sweepBlobs, m.sweepBytes, m.blobsMissing, free, capacity,
	}, m.catalogGauges()...)
}
