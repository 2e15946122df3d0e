package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// RouteUnmatched is the route label of requests that matched no route
// (404 and 405 answers), which must not be labelled with their raw path.
const RouteUnmatched = "unmatched"

// methodNames are the method labels; any other method is "OTHER".
var methodNames = [...]string{
	http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost,
	http.MethodDelete, http.MethodPatch, http.MethodOptions, "OTHER",
}

// numMethods is the number of method labels.
const numMethods = len(methodNames)

// methodIndex returns the index of method's label in methodNames.
func methodIndex(method string) int {
	for i, name := range methodNames[:numMethods-1] {
		if method == name {
			return i
		}
	}
	return numMethods - 1
}

// knownCodes are the statuses the server answers with; an Endpoint keeps
// their counters at hand. Others take a slower lookup.
var knownCodes = [...]int{
	200, 204, 206, 304, 307, 400, 401, 404, 405, 409, 412, 413, 415, 416, 499, 500, 503,
}

// codeSlot returns the index of code in knownCodes, or -1.
func codeSlot(code int) int {
	for i, c := range knownCodes {
		if c == code {
			return i
		}
	}
	return -1
}

// codeLabel is the code label of a status; nonsense statuses share one.
func codeLabel(code int) string {
	if code < 100 || code > 599 {
		return "other"
	}
	return strconv.Itoa(code)
}

// counter boxes a Counter for an atomic pointer.
type counter struct{ prometheus.Counter }

// Endpoint holds the series of one route pattern and method, resolved
// once, so that observing a request costs no label lookups. Its series
// appear on its first observation. A nil *Endpoint observes nothing.
type Endpoint struct {
	m      *Metrics
	route  string
	method string

	codes    [len(knownCodes)]atomic.Pointer[counter]
	once     sync.Once
	duration prometheus.Observer
	out      prometheus.Counter
	inOnce   sync.Once
	in       prometheus.Counter
}

// Endpoint returns the series of requests routed to the pattern route
// (chi's, like "/nar/{file}") with method. Methods other than the
// standard ones share the label "OTHER".
func (m *Metrics) Endpoint(route, method string) *Endpoint {
	if m == nil {
		return nil
	}
	return &Endpoint{m: m, route: route, method: methodNames[methodIndex(method)]}
}

// Unmatched returns the Endpoint of requests with method that matched no
// route.
func (m *Metrics) Unmatched(method string) *Endpoint {
	if m == nil {
		return nil
	}
	return m.unmatched[methodIndex(method)]
}

// Observe records one answered request: its status, how long it took,
// and the request and response body bytes.
func (e *Endpoint) Observe(code int, took time.Duration, in, out int64) {
	if e == nil {
		return
	}
	e.once.Do(func() {
		e.duration = e.m.duration.WithLabelValues(e.route, e.method)
		e.out = e.m.respBytes.WithLabelValues(e.route)
	})
	e.requests(code).Inc()
	e.duration.Observe(took.Seconds())
	if in > 0 {
		e.inOnce.Do(func() { e.in = e.m.reqBytes.WithLabelValues(e.route) })
		e.in.Add(float64(in))
	}
	e.out.Add(float64(out))
}

// requests returns the request counter of a status.
func (e *Endpoint) requests(code int) prometheus.Counter {
	i := codeSlot(code)
	if i < 0 {
		return e.m.requests.WithLabelValues(e.route, e.method, codeLabel(code))
	}
	if c := e.codes[i].Load(); c != nil {
		return c.Counter
	}
	c := &counter{e.m.requests.WithLabelValues(e.route, e.method, codeLabel(code))}
	e.codes[i].Store(c)
	return c.Counter
}

// NarInfo counts a GET or HEAD of a narinfo: hit when the cache has the
// path, miss when it answered 404.
func (m *Metrics) NarInfo(hit bool) {
	if m == nil {
		return
	}
	if hit {
		m.narinfo[1].Inc()
	} else {
		m.narinfo[0].Inc()
	}
}
