package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/nix-cached/cached/metrics"
)

// newMetricsEnv is newEnv with metrics on a registry of its own.
func newMetricsEnv(t *testing.T, publicRead bool) *env {
	t.Helper()
	logs := &lockedBuffer{}
	p := newParts(t, publicRead, logs)
	m, err := metrics.New(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	cfg := p.s.cfg
	cfg.Metrics = m
	s, err := New(cfg, p.cat, p.store, p.ing, p.s.auth)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, srv: httptest.NewServer(s), cat: p.cat, store: p.store, key: p.key, logs: logs, usage: p.usage}
	t.Cleanup(e.srv.Close)
	return e
}

// server returns the *Server behind e.
func (e *env) server() *Server {
	e.t.Helper()
	s, ok := e.srv.Config.Handler.(*Server)
	if !ok {
		e.t.Fatal("test server does not run a *Server")
	}
	return s
}

// families are the parsed metric families of a scrape.
type families map[string]*dto.MetricFamily

// scrape fetches /metrics without a token and parses it.
func (e *env) scrape() families {
	e.t.Helper()
	r := e.do("GET", "/metrics", "", nil).expect(e.t, 200, "GET /metrics")
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		e.t.Errorf("/metrics Cache-Control %q", cc)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(r.body))
	if err != nil {
		e.t.Fatalf("parsing /metrics: %v\n%s", err, r.body)
	}
	return fams
}

// get returns the value of the series of name with at least the given
// labels ("name", "value", …): a counter's or gauge's value, a histogram's
// count, summed over the matching series. Absent series count 0.
func (f families) get(name string, labels ...string) float64 {
	fam := f[name]
	if fam == nil {
		return 0
	}
	var sum float64
	for _, m := range fam.GetMetric() {
		if !hasLabels(m, labels) {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum
}

// hasLabels reports whether m carries every label pair of labels.
func hasLabels(m *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func TestMetricsNarInfoHitsAndMisses(t *testing.T) {
	e := newMetricsEnv(t, true)
	e.push(pathA, "present")
	for _, m := range []string{"GET", "HEAD"} {
		e.do(m, "/"+pathA[:32]+".narinfo", "", nil).expect(t, 200, m+" hit")
		e.do(m, "/"+pathB[:32]+".narinfo", "", nil).expect(t, 404, m+" miss")
	}
	e.do("GET", "/"+pathA[:32]+".narinfo", "", nil).expect(t, 200, "GET hit")
	e.do("GET", "/not-a-hash.narinfo", "", nil).expect(t, 400, "GET of a bad name")
	f := e.scrape()
	const route = "/{hash}.narinfo"
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"cached_narinfo_requests_total", []string{"result", "hit"}, 3},
		{"cached_narinfo_requests_total", []string{"result", "miss"}, 2},
		{"cached_http_requests_total", []string{"route", route, "method", "GET", "code", "200"}, 2},
		{"cached_http_requests_total", []string{"route", route, "method", "HEAD", "code", "200"}, 1},
		{"cached_http_requests_total", []string{"route", route, "method", "GET", "code", "404"}, 1},
		{"cached_http_requests_total", []string{"route", route, "method", "HEAD", "code", "404"}, 1},
		{"cached_http_requests_total", []string{"route", route, "method", "GET", "code", "400"}, 1},
		{"cached_http_requests_total", []string{"route", route, "method", "PUT", "code", "204"}, 1},
		{"cached_http_request_duration_seconds", []string{"route", route, "method", "GET"}, 4},
		{"cached_http_request_duration_seconds", []string{"route", route, "method", "HEAD"}, 2},
		{"cached_uploads_total", []string{"kind", "nar", "result", "accepted"}, 1},
		{"cached_uploads_total", []string{"kind", "narinfo", "result", "accepted"}, 1},
	} {
		if got := f.get(c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

func TestMetricsPrivateReads(t *testing.T) {
	e := newMetricsEnv(t, false)
	e.push(pathA, "present")
	e.do("GET", "/"+pathA[:32]+".narinfo", "", nil).expect(t, 401, "GET without a token")
	e.do("GET", "/"+pathA[:32]+".narinfo", readToken, nil).expect(t, 200, "GET with a token")
	// /metrics needs no token even when reads do.
	f := e.scrape()
	if got := f.get("cached_narinfo_requests_total", "result", "hit"); got != 1 {
		t.Errorf("hits %v, want 1 (a 401 is not a hit)", got)
	}
	if got := f.get("cached_http_requests_total", "route", "/{hash}.narinfo", "code", "401"); got != 1 {
		t.Errorf("401s on the narinfo route: %v, want 1", got)
	}
	body := e.do("GET", "/metrics", "", nil).body
	for _, secret := range []string{pushToken, readToken, adminToken, pathA[:32]} {
		if strings.Contains(body, secret) {
			t.Errorf("/metrics shows %q", secret)
		}
	}
}

func TestNoMetricsEndpointWithoutMetrics(t *testing.T) {
	e := newEnv(t, true)
	e.do("GET", "/metrics", "", nil).expect(t, 404, "GET /metrics without metrics")
}

// narURL returns the URL path of the NAR that the narinfo of base names.
func (e *env) narURL(base string) string {
	e.t.Helper()
	ni := e.do("GET", "/"+base[:32]+".narinfo", "", nil).expect(e.t, 200, "GET narinfo").body
	m := regexp.MustCompile(`(?m)^URL: (\S+)$`).FindStringSubmatch(ni)
	if m == nil {
		e.t.Fatalf("no URL in %q", ni)
	}
	return "/" + m[1]
}

func TestMetricsNARBytes(t *testing.T) {
	e := newMetricsEnv(t, true)
	p := e.push(pathA, strings.Repeat("bytes out\n", 10000))
	url := e.narURL(pathA)
	body := e.do("GET", url, "", nil).expect(t, 200, "GET NAR").body
	e.do("HEAD", url, "", nil).expect(t, 200, "HEAD NAR")
	e.do("GET", url, "", nil, "Range: bytes=10-109").expect(t, 206, "GET NAR range")
	f := e.scrape()
	const route = "/nar/{file}"
	if got, want := f.get("cached_http_response_bytes_total", "route", route), float64(len(body)+100); got != want {
		t.Errorf("response bytes %v, want %v (a whole NAR and a 100-byte range)", got, want)
	}
	if got, want := f.get("cached_http_request_bytes_total", "route", route), float64(p.narinfo.FileSize); got != want {
		t.Errorf("request bytes %v, want %v (the xz upload)", got, want)
	}
	if got, want := f.get("cached_http_request_bytes_total", "route", "/{hash}.narinfo"), float64(len(p.narinfo.String())); got != want {
		t.Errorf("narinfo request bytes %v, want %v", got, want)
	}
	if got := f.get("cached_http_requests_total", "route", route, "method", "GET", "code", "206"); got != 1 {
		t.Errorf("206 answers: %v, want 1", got)
	}
}

// sendfileWriter is a ResponseWriter that, like net/http's, has ReadFrom;
// it notes whether what it was given is a file (which net/http sends with
// sendfile).
type sendfileWriter struct {
	*httptest.ResponseRecorder
	fromFile bool
	n        int64
}

func (w *sendfileWriter) ReadFrom(src io.Reader) (int64, error) {
	r := src
	if l, ok := r.(*io.LimitedReader); ok {
		r = l.R
	}
	_, w.fromFile = r.(*os.File)
	n, err := io.Copy(w.ResponseRecorder, src)
	w.n += n
	return n, err
}

// TestMetricsCountSendfile checks that a NAR served from the disk store
// still reaches the ResponseWriter's ReadFrom as a file (net/http then uses
// sendfile), and that those bytes are counted.
func TestMetricsCountSendfile(t *testing.T) {
	e := newMetricsEnv(t, true)
	e.push(pathA, strings.Repeat("sendfile\n", 5000))
	url := e.narURL(pathA)
	before := e.scrape().get("cached_http_response_bytes_total", "route", "/nar/{file}")
	sw := &sendfileWriter{ResponseRecorder: httptest.NewRecorder()}
	e.server().ServeHTTP(sw, httptest.NewRequest(http.MethodGet, url, nil))
	if sw.Code != http.StatusOK || !sw.fromFile || sw.n == 0 || sw.n != int64(sw.Body.Len()) {
		t.Fatalf("GET %s: %d; ReadFrom got a file: %v; %d bytes through ReadFrom of %d",
			url, sw.Code, sw.fromFile, sw.n, sw.Body.Len())
	}
	after := e.scrape().get("cached_http_response_bytes_total", "route", "/nar/{file}")
	if after-before != float64(sw.n) {
		t.Errorf("response bytes grew by %v, want %d", after-before, sw.n)
	}
}

// routePatterns are the route labels the server may use.
var routePatterns = map[string]bool{
	"/": true, "/nix-cache-info": true, "/public-key": true, "/healthz": true, "/readyz": true, "/metrics": true,
	"/{hash}.narinfo": true, "/{hash}.ls": true, "/nar/{file}": true, "/log/{drv}": true,
	"/realisations/{file}": true, "/debuginfo/{id}": true, "/_cached/stats": true, metrics.RouteUnmatched: true,
}

func TestMetricsRouteLabelsArePatterns(t *testing.T) {
	e := newMetricsEnv(t, true)
	e.push(pathA, "present")
	for _, path := range []string{
		"/", "/nix-cache-info", "/public-key", "/healthz", "/readyz",
		"/" + pathB[:32] + ".narinfo", "/" + pathA[:32] + ".ls", "/nar/" + zeros52 + ".nar",
		"/log/" + pathC + ".drv", "/realisations/" + realisedID + ".doi", "/debuginfo/" + strings.Repeat("ab", 20),
		"/no/such/" + pathA, "/" + pathA,
	} {
		e.do("GET", path, "", nil)
	}
	e.do("GET", "/_cached/stats", adminToken, nil).expect(t, 200, "GET stats")
	e.do("DELETE", "/nix-cache-info", pushToken, nil).expect(t, 405, "DELETE")
	e.do("BREW", "/"+pathA[:32]+".narinfo", "", nil).expect(t, 405, "BREW")
	f := e.scrape()
	for _, name := range []string{
		"cached_http_requests_total", "cached_http_request_duration_seconds",
		"cached_http_request_bytes_total", "cached_http_response_bytes_total",
	} {
		if len(f[name].GetMetric()) == 0 {
			t.Errorf("no %s series", name)
		}
		for _, m := range f[name].GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "route" && !routePatterns[l.GetValue()] {
					t.Errorf("%s has route %q, not a pattern", name, l.GetValue())
				}
			}
		}
	}
	for _, c := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"route", "unmatched", "method", "GET", "code", "404"}, 2},
		{[]string{"route", "unmatched", "method", "DELETE", "code", "405"}, 1},
		{[]string{"route", "unmatched", "method", "OTHER", "code", "405"}, 1},
		{[]string{"route", "/_cached/stats", "method", "GET", "code", "200"}, 1},
		{[]string{"route", "/nar/{file}", "method", "GET", "code", "404"}, 1},
		{[]string{"route", "/healthz", "method", "GET", "code", "200"}, 1},
	} {
		if got := f.get("cached_http_requests_total", c.labels...); got != c.want {
			t.Errorf("cached_http_requests_total%v = %v, want %v", c.labels, got, c.want)
		}
	}
}

// TestMetricsFamilies checks that /metrics, after some traffic, has every
// family, typed, with help, and the Go and process collectors.
func TestMetricsFamilies(t *testing.T) {
	e := newMetricsEnv(t, true)
	e.push(pathA, "present")
	e.do("GET", "/"+pathA[:32]+".narinfo", "", nil).expect(t, 200, "GET narinfo")
	e.do("PUT", "/"+pathB[:32]+".narinfo", pushToken, []byte("nonsense")).expect(t, 400, "PUT nonsense")
	f := e.scrape()
	for name, typ := range map[string]dto.MetricType{
		"cached_http_requests_total":           dto.MetricType_COUNTER,
		"cached_http_request_duration_seconds": dto.MetricType_HISTOGRAM,
		"cached_http_request_bytes_total":      dto.MetricType_COUNTER,
		"cached_http_response_bytes_total":     dto.MetricType_COUNTER,
		"cached_narinfo_requests_total":        dto.MetricType_COUNTER,
		"cached_uploads_total":                 dto.MetricType_COUNTER,
		"cached_upload_rejections_total":       dto.MetricType_COUNTER,
		"cached_gc_runs_total":                 dto.MetricType_COUNTER,
		"cached_gc_paths_removed_total":        dto.MetricType_COUNTER,
		"cached_gc_bytes_freed_total":          dto.MetricType_COUNTER,
		"cached_gc_last_run_timestamp_seconds": dto.MetricType_GAUGE,
		"cached_gc_last_duration_seconds":      dto.MetricType_GAUGE,
		"cached_gc_live_paths":                 dto.MetricType_GAUGE,
		"cached_gc_live_bytes":                 dto.MetricType_GAUGE,
		"cached_sweep_runs_total":              dto.MetricType_COUNTER,
		"cached_sweep_nars_removed_total":      dto.MetricType_COUNTER,
		"cached_sweep_blobs_removed_total":     dto.MetricType_COUNTER,
		"cached_sweep_bytes_freed_total":       dto.MetricType_COUNTER,
		"go_goroutines":                        dto.MetricType_GAUGE,
		"process_cpu_seconds_total":            dto.MetricType_COUNTER,
	} {
		fam := f[name]
		switch {
		case fam == nil:
			t.Errorf("no family %s", name)
		case fam.GetType() != typ:
			t.Errorf("%s is a %v, want %v", name, fam.GetType(), typ)
		case fam.GetHelp() == "":
			t.Errorf("%s has no help", name)
		}
	}
}
