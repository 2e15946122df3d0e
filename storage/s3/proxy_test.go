package s3

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
)

// fault is what a faultProxy does with one request.
type fault struct {
	status    int    // answer with this S3 error status (0: no error)
	code      string // and this S3 error code
	stall     bool   // send nothing until the client goes away
	stallBody bool   // send headers and a few bytes, then stall
}

// faultProxy is a reverse proxy in front of MinIO whose rule may answer a
// request with an error, or stall it, instead of passing it on. It
// records every request it sees.
type faultProxy struct {
	URL     string
	release chan struct{} // closed at cleanup: stalled handlers return

	mu     sync.Mutex
	rule   func(r *http.Request, seen int) fault // seen: earlier requests like r
	seen   map[string]int
	log    []string // "METHOD PATH?QUERY [Range]"
	faults int      // requests answered with an error
	gaveUp int      // stalled requests whose client went away
}

// newFaultProxy starts a proxy to target that t.Cleanup stops.
func newFaultProxy(t *testing.T, target string, rule func(r *http.Request, seen int) fault) *faultProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{rule: rule, seen: make(map[string]int), release: make(chan struct{})}
	rp := httputil.NewSingleHostReverseProxy(u) // keeps the signed Host header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := p.decide(r)
		switch {
		case f.stall:
			p.stall(r)
		case f.stallBody:
			w.Header().Set("Content-Length", "1048576")
			w.WriteHeader(http.StatusOK)
			w.Write(make([]byte, 100))
			w.(http.Flusher).Flush()
			p.stall(r)
		case f.status != 0:
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(f.status)
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+
				`<Error><Code>%s</Code><Message>injected by the test proxy</Message></Error>`, f.code)
		default:
			rp.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(func() {
		close(p.release)
		srv.Close()
	})
	p.URL = srv.URL
	return p
}

// decide records r and applies the rule.
func (p *faultProxy) decide(r *http.Request) fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	id := r.Method + " " + r.URL.Path + "?" + r.URL.Query().Get("partNumber") + r.Header.Get("X-Amz-Copy-Source")
	line := r.Method + " " + r.URL.Path
	if r.URL.RawQuery != "" {
		line += "?" + r.URL.RawQuery
	}
	if rg := r.Header.Get("Range"); rg != "" {
		line += " " + rg
	}
	p.log = append(p.log, line)
	f := fault{}
	if p.rule != nil {
		f = p.rule(r, p.seen[id])
	}
	p.seen[id]++
	if f.status != 0 {
		p.faults++
	}
	return f
}

// stall blocks until r's client goes away, or the test ends.
func (p *faultProxy) stall(r *http.Request) {
	select {
	case <-r.Context().Done():
		p.mu.Lock()
		p.gaveUp++
		p.mu.Unlock()
	case <-p.release:
	}
}

// requests returns the requests seen so far and forgets them.
func (p *faultProxy) requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.log
	p.log = nil
	return l
}

// counts returns how many errors the proxy answered and how many stalled
// clients gave up.
func (p *faultProxy) counts() (faults, gaveUp int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.faults, p.gaveUp
}

// isUploadPart reports whether r uploads a part (not a copy of one).
func isUploadPart(r *http.Request) bool {
	return r.Method == http.MethodPut && r.URL.Query().Has("partNumber") && r.Header.Get("X-Amz-Copy-Source") == ""
}

// isCopy reports whether r copies an object or a part server-side.
func isCopy(r *http.Request) bool {
	return r.Method == http.MethodPut && r.Header.Get("X-Amz-Copy-Source") != ""
}

// isComplete reports whether r completes a multipart upload.
func isComplete(r *http.Request) bool {
	return r.Method == http.MethodPost && r.URL.Query().Has("uploadId")
}
