// Package web is the cache's web view for its operator: server-rendered
// HTML pages, without scripts or outside assets, that show what the cache
// holds. The HTML form of GET / (the usage instructions, a summary and a
// search box), a search of paths by name, a page per path (sizes, closure,
// references and referrers, pins, signatures, file listing), the pins, and
// the history of garbage collections with a chart of what stayed.
//
// The package renders pages from the catalog and blob storage only; the
// server mounts them under Prefix and checks tokens before it calls them
// (every page but GET / is a read, which a private cache refuses without a
// read token).
package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/storage"
)

// Prefix is where the server mounts the pages other than GET /.
const Prefix = "/_cached/ui"

// Policy is the Content-Security-Policy of every page: nothing is loaded
// from anywhere, no script runs, styles are inline, and forms (the search
// box) only submit to the cache itself.
const Policy = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// ErrBadRequest marks malformed input: a query, cursor or hash part that
// no page can answer. Pages answer it with a 400.
var ErrBadRequest = errors.New("bad request")

// errNotFound is a page for something absent.
var errNotFound = errors.New("not found")

// statusClientClosed is what a request whose client went away is logged
// with (nginx's 499), as the server does.
const statusClientClosed = 499

// Config is what the pages read from.
type Config struct {
	Catalog catalog.Catalog
	Store   storage.Store
	Logger  *slog.Logger
	// Now is the clock (time.Now if nil).
	Now func() time.Time
}

// UI renders the pages. Its methods are safe for concurrent use.
type UI struct {
	cat        catalog.Catalog
	store      storage.Store
	log        *slog.Logger
	now        func() time.Time
	sc         statsCache
	heavySlots chan struct{} // see heavy
}

// New returns the pages over cfg's catalog and storage.
func New(cfg Config) (*UI, error) {
	if cfg.Catalog == nil || cfg.Store == nil {
		return nil, errors.New("web: catalog and storage are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &UI{cat: cfg.Catalog, store: cfg.Store, log: cfg.Logger, now: cfg.Now,
		sc: statsCache{lock: make(chan struct{}, 1)}, heavySlots: make(chan struct{}, maxHeavy)}, nil
}

// view is what the layout renders: the page's title, which entry of the
// navigation it is, the query to show in the search box, and the page's
// own data.
type view struct {
	Title string
	Nav   string // "paths", "pins", "gc", or "" for none
	Query string
	Body  any
}

// render writes the page t, with status, and the headers of every page:
// no caching (pages reflect the catalog, and a private cache's pages
// need a token), no sniffing, and Policy. HEAD gets the headers only.
func (u *UI) render(w http.ResponseWriter, r *http.Request, status int, t *template.Template, v view) error {
	var b bytes.Buffer
	b.Grow(16 << 10)
	if err := t.ExecuteTemplate(&b, "layout", v); err != nil {
		return fmt.Errorf("web: rendering %s: %w", t.Name(), err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(b.Len()))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", Policy)
	h.Set("Referrer-Policy", "same-origin")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b.Bytes())
	}
	return nil
}

// statusOf maps the error of a page to its status.
func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrBadRequest):
		return http.StatusBadRequest
	case errors.Is(err, errNotFound), errors.Is(err, catalog.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, context.Canceled):
		return statusClientClosed
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// errorPage is the body of a page that failed.
type errorPage struct {
	Status  int
	Text    string // the status text
	Message string // what the visitor is told
}

// fail answers err with an HTML page of its status, and returns err so
// that the caller can log it. Server-side failures say nothing of their
// cause; the log has it.
func (u *UI) fail(w http.ResponseWriter, r *http.Request, err error) error {
	status := statusOf(err)
	p := errorPage{Status: status, Text: http.StatusText(status)}
	switch status {
	case http.StatusBadRequest:
		p.Message = err.Error()
	case http.StatusNotFound:
		p.Message = "There is nothing here: the cache does not hold it (any more)."
	case statusClientClosed:
		p.Text = "Client Closed Request"
	default:
		p.Message = "The cache could not answer. The server's log says why."
	}
	if rerr := u.render(w, r, status, errorTmpl, view{Title: p.Text + " · cached", Nav: "error", Body: p}); rerr != nil {
		http.Error(w, p.Text, status)
	}
	return err
}

// page runs a page's handler and answers its error with fail.
func (u *UI) page(w http.ResponseWriter, r *http.Request, h func() error) error {
	if err := h(); err != nil {
		return u.fail(w, r, err)
	}
	return nil
}

// badRequest returns an ErrBadRequest saying why.
func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadRequest, fmt.Sprintf(format, args...))
}

// storePathURL is the address of the page of the path with this hash part.
func storePathURL(hashPart string) string { return Prefix + "/path/" + hashPart }
