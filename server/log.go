package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/nix-cached/cached/metrics"
)

// recorder captures a response's status and size for the request log and
// the metrics. It forwards ReadFrom so that files still go out through
// sendfile, and counts those bytes too.
type recorder struct {
	http.ResponseWriter
	status   int
	bytes    int64
	err      error
	endpoint *metrics.Endpoint // the route's series, set by observed
	body     countingBody      // the request body, when metrics count it
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

// WriteString lets io.WriteString reach the connection's own
// WriteString, without copying the string.
func (r *recorder) WriteString(s string) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := io.WriteString(r.ResponseWriter, s)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) ReadFrom(src io.Reader) (int64, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	rf, ok := r.ResponseWriter.(io.ReaderFrom)
	if !ok {
		n, err := io.Copy(struct{ io.Writer }{r.ResponseWriter}, src)
		r.bytes += n
		return n, err
	}
	n, err := rf.ReadFrom(src)
	r.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// logRequests writes one log line per request: method, path, status,
// bytes, duration, and the reason of a failure. Credentials never appear:
// headers are not logged and tokens never travel in URLs.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w}
		if s.cfg.Metrics != nil && r.Body != nil && r.Body != http.NoBody {
			// Count what handlers read, without changing the caller's request.
			rec.body.ReadCloser = r.Body
			counted := *r
			counted.Body = &rec.body
			r = &counted
		}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				rec.err = fmt.Errorf("panic: %v", p)
				if rec.status == 0 {
					writeError(rec, r, rec.err)
				}
				rec.status = http.StatusInternalServerError
			}
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			took := time.Since(start)
			if s.cfg.Metrics != nil {
				ep := rec.endpoint
				if ep == nil {
					ep = s.cfg.Metrics.Unmatched(r.Method)
				}
				ep.Observe(status, took, rec.body.n, rec.bytes)
			}
			level := slog.LevelInfo
			if status >= 500 {
				level = slog.LevelError
			}
			if !s.log.Enabled(r.Context(), level) {
				return
			}
			attrs := []slog.Attr{
				slog.String("method", r.Method),
				slog.String("path", r.URL.EscapedPath()),
				slog.Int("status", status),
				slog.Int64("bytes", rec.bytes),
				slog.Duration("duration", took),
				slog.String("remote", r.RemoteAddr),
			}
			if r.ContentLength > 0 {
				attrs = append(attrs, slog.Int64("body", r.ContentLength))
			}
			if r.ProtoMajor != 1 {
				attrs = append(attrs, slog.String("proto", r.Proto))
			}
			// A 404 is an ordinary answer ("not in this cache"): its reason
			// would only repeat the path.
			if rec.err != nil && status != http.StatusNotFound {
				attrs = append(attrs, slog.String("error", rec.err.Error()))
			}
			s.log.LogAttrs(context.Background(), level, "request", attrs...)
		}()
		next.ServeHTTP(rec, r)
	})
}
