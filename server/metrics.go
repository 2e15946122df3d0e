package server

import (
	"io"
	"net/http"

	"github.com/nix-cached/cached/metrics"
)

// observed makes h's requests count in ep's series (log.go records them);
// a nil ep leaves h as it is.
func observed(ep *metrics.Endpoint, h http.HandlerFunc) http.HandlerFunc {
	if ep == nil {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if rec, ok := w.(*recorder); ok {
			rec.endpoint = ep
		}
		h(w, r)
	}
}

// countingBody counts the request body bytes that handlers read.
type countingBody struct {
	io.ReadCloser
	n int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n += int64(n)
	return n, err
}

// countUpload counts an upload's outcome, err being what its handler (or
// the token check) returned.
func countUpload(m *metrics.Metrics, kind metrics.Kind, err error) {
	if m == nil {
		return
	}
	if err == nil {
		m.UploadAccepted(kind)
		return
	}
	if status := statusOf(err); status >= 500 || status == statusClientClosed {
		m.UploadFailed(kind)
		return
	}
	m.UploadRejected(kind, rejectionOf(err))
}
