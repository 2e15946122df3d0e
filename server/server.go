// Package server is the HTTP face of the cache: routes, authentication,
// the mapping of errors to statuses, and request logs. What happens to an
// upload is decided in package ingest; what is stored, in catalog and
// storage.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/nix-cached/cached/auth"
	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/ingest"
	"github.com/nix-cached/cached/metrics"
	"github.com/nix-cached/cached/signing"
	"github.com/nix-cached/cached/storage"
	"github.com/nix-cached/cached/storepath"
	"github.com/nix-cached/cached/upstream"
	"github.com/nix-cached/cached/usage"
	"github.com/nix-cached/cached/web"
)

// Config is what the server tells clients about the cache.
type Config struct {
	StoreDir      string              // the store directory clients must use (default /nix/store)
	Priority      int                 // nix-cache-info Priority: lower is preferred
	WantMassQuery bool                // nix-cache-info WantMassQuery
	PublicKeys    []signing.PublicKey // served at /public-key
	MaxLogSize    int64               // largest build log accepted (default 1 GiB)
	// RedirectTTL, when positive and the storage can presign URLs (S3),
	// answers NAR GETs with a 307 to a URL valid this long, so the bytes
	// bypass the server.
	RedirectTTL time.Duration
	// Usage records narinfo and NAR requests as uses of their paths, for
	// garbage collection; nil records nothing.
	Usage *usage.Recorder
	// Metrics, when set, records every request, narinfo hit and upload,
	// and is served at GET /metrics. Like /healthz that endpoint needs no
	// token: its labels are route patterns, methods, statuses and fixed
	// reasons, never paths, hashes or credentials.
	Metrics *metrics.Metrics
	Logger  *slog.Logger
	// Upstream, when set, is where narinfo misses are looked up and
	// mirrored from (pull-through, mirror.go).
	Upstream *upstream.Puller
	// UpstreamPrefetch fetches the NAR of each mirrored narinfo served
	// ahead of its request (mirror_prefetch.go).
	UpstreamPrefetch bool
}

// Server serves the binary cache protocol.
type Server struct {
	cfg     Config
	cat     catalog.Catalog
	store   storage.Store
	ing     *ingest.Ingester
	auth    *auth.Authenticator
	log     *slog.Logger
	info    string // the nix-cache-info body
	keys    string // the /public-key body
	router  chi.Router
	private bool // reads need a token: responses must not be cached publicly
	// ui renders the web view (ui.go).
	ui *web.UI
	// narInfoCache is the Cache-Control header of narinfos.
	narInfoCache []string
	flights      flights        // NAR downloads from upstreams under way
	waiting      waiting        // mirrored paths waiting for their references
	pre          prefetcher     // mirrored NARs fetched ahead of their requests
	bg           sync.WaitGroup // work that outlives its request (Wait)
}

// Wait waits for the work requests left running: the commits of NARs
// fetched from upstreams, and the prefetches queued. Call it once the
// HTTP server stopped, before closing the catalog.
func (s *Server) Wait() {
	s.pre.stop()
	s.bg.Wait()
}

// New returns a server over the given catalog, storage and ingester.
func New(cfg Config, cat catalog.Catalog, store storage.Store, ing *ingest.Ingester, a *auth.Authenticator) (*Server, error) {
	if cat == nil || store == nil || ing == nil || a == nil {
		return nil, errors.New("server: catalog, storage, ingester and authenticator are required")
	}
	if cfg.StoreDir == "" {
		cfg.StoreDir = storepath.DefaultStoreDir
	}
	if err := storepath.ValidateStoreDir(cfg.StoreDir); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if cfg.MaxLogSize <= 0 {
		cfg.MaxLogSize = 1 << 30
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ui, err := web.New(web.Config{Catalog: cat, Store: store, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s := &Server{cfg: cfg, cat: cat, store: store, ing: ing, auth: a, log: cfg.Logger, private: !a.PublicRead(), ui: ui}
	wmq := 0
	if cfg.WantMassQuery {
		wmq = 1
	}
	s.info = fmt.Sprintf("StoreDir: %s\nWantMassQuery: %d\nPriority: %d\n", cfg.StoreDir, wmq, cfg.Priority)
	var keys strings.Builder
	for _, k := range cfg.PublicKeys {
		keys.WriteString(k.String() + "\n")
	}
	s.keys = keys.String()
	s.narInfoCache = []string{s.cacheControl(false)}
	s.routes()
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

// handlerFunc is a handler that reports failure by returning an error.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// scoped wraps h with the token check for scope and the error mapping.
func (s *Server) scoped(scope catalog.Scope, h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { _ = s.serve(w, r, scope, h) }
}

// upload is scoped to push tokens and counts the upload's outcome.
func (s *Server) upload(kind metrics.Kind, h handlerFunc) http.HandlerFunc {
	m := s.cfg.Metrics
	return func(w http.ResponseWriter, r *http.Request) {
		// An upload whose body arrived whole is committed whatever the
		// connection does next: net/http cancels a request's context when
		// the client half-closes its side after sending, and a commit cut
		// short there would fail an upload the client sent completely.
		// Reading the body stays bounded by the connection's deadlines.
		r = r.WithContext(context.WithoutCancel(r.Context()))
		countUpload(m, kind, s.serve(w, r, catalog.ScopePush, h))
	}
}

// serve checks the token for scope, runs h, answers its error if any, and
// returns it.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, scope catalog.Scope, h handlerFunc) error {
	err := s.auth.Check(r.Context(), r, scope)
	if err == nil {
		err = h(w, r)
	}
	if err != nil {
		writeError(w, r, err)
	}
	return err
}

func (s *Server) routes() {
	r := chi.NewRouter()
	r.Use(s.logRequests)
	m := s.cfg.Metrics
	read := func(h handlerFunc) http.HandlerFunc { return s.scoped(catalog.ScopeRead, h) }
	getHead := func(pattern string, h http.HandlerFunc) {
		r.Get(pattern, observed(m.Endpoint(pattern, http.MethodGet), h))
		r.Head(pattern, observed(m.Endpoint(pattern, http.MethodHead), h))
	}
	put := func(pattern string, h http.HandlerFunc) {
		r.Put(pattern, observed(m.Endpoint(pattern, http.MethodPut), h))
	}

	// Public: they reveal nothing about the cache's contents.
	getHead("/", s.index)
	getHead("/nix-cache-info", s.cacheInfo)
	getHead("/public-key", s.publicKey)
	getHead("/healthz", s.healthz)
	getHead("/readyz", s.readyz)
	if m != nil {
		// Traffic and GC counts by route pattern: no paths, no secrets.
		r.Get("/metrics", observed(m.Endpoint("/metrics", http.MethodGet), m.Handler(nil).ServeHTTP))
	}
	put("/nix-cache-info", s.scoped(catalog.ScopePush, s.putCacheInfo))

	getHead("/{hash}.narinfo", read(s.getNarInfo))
	put("/{hash}.narinfo", s.upload(metrics.KindNarInfo, s.putNarInfo))
	getHead("/{hash}.ls", read(s.getListing))
	put("/{hash}.ls", s.upload(metrics.KindListing, s.putListing))
	getHead("/nar/{file}", read(s.getNAR))
	getHead("/mirror/{hash}/{file}", read(s.getMirrorNAR))
	put("/nar/{file}", s.upload(metrics.KindNAR, s.putNAR))
	getHead("/log/{drv}", read(s.getLog))
	put("/log/{drv}", s.upload(metrics.KindLog, s.putLog))
	getHead("/realisations/{file}", read(s.getRealisation))
	put("/realisations/{file}", s.upload(metrics.KindRealisation, s.putRealisation))
	getHead("/build-trace-v2/{drv}/{file}", read(s.getBuildTrace))
	put("/build-trace-v2/{drv}/{file}", s.upload(metrics.KindRealisation, s.putBuildTrace))
	getHead("/debuginfo/{id}", read(s.getDebugInfo))
	put("/debuginfo/{id}", s.upload(metrics.KindDebugInfo, s.putDebugInfo))
	s.uiRoutes(getHead)

	r.Get("/_cached/stats", observed(m.Endpoint("/_cached/stats", http.MethodGet),
		s.scoped(catalog.ScopeAdmin, s.adminStats)))
	r.Post("/_cached/lookup", observed(m.Endpoint("/_cached/lookup", http.MethodPost),
		s.scoped(catalog.ScopePush, s.lookup)))
	r.Post("/_cached/pins", observed(m.Endpoint("/_cached/pins", http.MethodPost),
		s.scoped(catalog.ScopePush, s.addPin)))

	// Requests that match no route count as route "unmatched" (log.go).
	r.NotFound(func(w http.ResponseWriter, r *http.Request) { writeError(w, r, errNotFound) })
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, fmt.Errorf("%w: %s", errMethod, r.Method))
	})
	s.router = r
}
