package server

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"syscall"

	"github.com/nix-cached/cached/auth"
	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/ingest"
	"github.com/nix-cached/cached/metrics"
	"github.com/nix-cached/cached/storage"
)

var (
	// errNotFound is a plain 404.
	errNotFound = errors.New("not found")
	// errBadRequest marks malformed requests (names, bodies).
	errBadRequest = errors.New("bad request")
	// errMethod is a method the route does not take.
	errMethod = errors.New("method not allowed")
	// errUpstream is an upstream cache failing to deliver a NAR its
	// narinfo names.
	errUpstream = errors.New("upstream failed")
	// errBlobMissing is a blob the catalog records and storage lost.
	errBlobMissing = errors.New("recorded in the catalog but missing from storage")
)

// statusClientClosed is logged when the client went away (nginx's 499).
const statusClientClosed = 499

// statusOf maps an error to its HTTP status. It is the only place where
// errors become statuses. A 404 must mean "absent" (Nix caches it for an
// hour), so anything that could not be decided is a 5xx.
func statusOf(err error) int {
	var tooBig *http.MaxBytesError
	switch {
	case errors.Is(err, auth.ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, auth.ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, errNotFound), errors.Is(err, catalog.ErrNotFound), errors.Is(err, storage.ErrNotFound):
		return http.StatusNotFound
	case errors.As(err, &tooBig), errors.Is(err, ingest.ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ingest.ErrUnsupported):
		return http.StatusUnsupportedMediaType
	case errors.Is(err, catalog.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, catalog.ErrBusy):
		return http.StatusServiceUnavailable
	case errors.Is(err, errMethod):
		return http.StatusMethodNotAllowed
	case errors.Is(err, errBadRequest), errors.Is(err, ingest.ErrInvalid), errors.Is(err, storage.ErrInvalidKey):
		return http.StatusBadRequest
	case errors.Is(err, context.Canceled):
		return statusClientClosed
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return http.StatusInsufficientStorage
	case errors.Is(err, errUpstream):
		return http.StatusBadGateway
	}
	return http.StatusInternalServerError
}

// rejectionOf says why an upload was refused with err, a client
// error (4xx). It is the only place where upload errors become reasons.
func rejectionOf(err error) metrics.Reason {
	var tooBig *http.MaxBytesError
	switch {
	case errors.Is(err, auth.ErrUnauthorized):
		return metrics.ReasonUnauthorized
	case errors.As(err, &tooBig), errors.Is(err, ingest.ErrTooLarge):
		return metrics.ReasonTooLarge
	case errors.Is(err, ingest.ErrUnsupported):
		return metrics.ReasonUnsupportedCompression
	case errors.Is(err, catalog.ErrConflict):
		return metrics.ReasonConflict
	case errors.Is(err, catalog.ErrMissingReferences):
		return metrics.ReasonMissingReferences
	case errors.Is(err, catalog.ErrNARNotFound):
		return metrics.ReasonNARNotUploaded
	case errors.Is(err, ingest.ErrHashMismatch):
		return metrics.ReasonHashMismatch
	case errors.Is(err, ingest.ErrInvalidNAR):
		return metrics.ReasonInvalidNAR
	case errors.Is(err, ingest.ErrNarInfoMismatch):
		return metrics.ReasonNarInfoMismatch
	case errors.Is(err, ingest.ErrInvalid):
		return metrics.ReasonInvalid
	case errors.Is(err, errBadRequest), errors.Is(err, storage.ErrInvalidKey):
		return metrics.ReasonInvalid
	}
	return metrics.ReasonOther
}

// publicMessage is the one line a client is told. Server-side failures and
// refusals say nothing about internals or about what exists.
func publicMessage(status int, err error) string {
	switch status {
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusNotFound:
		return "not found"
	case http.StatusRequestEntityTooLarge:
		if errors.Is(err, ingest.ErrTooLarge) {
			return err.Error()
		}
		return "request body too large"
	case statusClientClosed:
		return "client closed request"
	case http.StatusInsufficientStorage:
		return "the cache's storage is full"
	}
	if status >= 500 {
		return "internal server error"
	}
	return err.Error()
}

// writeError answers a request with err's status and one line of text.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(err)
	if rec, ok := w.(*recorder); ok {
		rec.err = err
		if rec.status != 0 {
			return // the status went out already; the body is cut short
		}
	}
	// A status is always written, 499 included: if nothing were, net/http
	// would answer 200 for a request that failed, and a client that only
	// half-closed its side would take that for success.
	msg := publicMessage(status, err) + "\n"
	h := w.Header()
	h.Del("Content-Encoding")
	h.Del("ETag")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(msg)))
	h.Set("Cache-Control", "no-store")
	if status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Basic realm="cached"`)
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte(msg))
	}
}
