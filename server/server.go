// Package server is the HTTP face of the cache: routes, authentication,
// the mapping of errors to statuses, and request logs. What happens to an
// upload is decided in package ingest; what is stored, in catalog and
// storage.
package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/nix-cached/cached/auth"
	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/ingest"
	"github.com/nix-cached/cached/signing"
	"github.com/nix-cached/cached/storage"
	"github.com/nix-cached/cached/storepath"
	"github.com/nix-cached/cached/usage"
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
	Usage  *usage.Recorder
	Logger *slog.Logger
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
	s := &Server{cfg: cfg, cat: cat, store: store, ing: ing, auth: a, log: cfg.Logger, private: !a.PublicRead()}
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
	s.routes()
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

// handlerFunc is a handler that reports failure by returning an error.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// scoped wraps h with the token check for scope and the error mapping.
func (s *Server) scoped(scope catalog.Scope, h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.auth.Check(r.Context(), r, scope); err != nil {
			writeError(w, r, err)
			return
		}
		if err := h(w, r); err != nil {
			writeError(w, r, err)
		}
	}
}

func (s *Server) routes() {
	r := chi.NewRouter()
	r.Use(s.logRequests)
	read := func(h handlerFunc) http.HandlerFunc { return s.scoped(catalog.ScopeRead, h) }
	push := func(h handlerFunc) http.HandlerFunc { return s.scoped(catalog.ScopePush, h) }
	getHead := func(pattern string, h http.HandlerFunc) {
		r.Get(pattern, h)
		r.Head(pattern, h)
	}

	// Public: they reveal nothing about the cache's contents.
	getHead("/", s.index)
	getHead("/nix-cache-info", s.cacheInfo)
	getHead("/public-key", s.publicKey)
	getHead("/healthz", s.healthz)
	getHead("/readyz", s.readyz)
	r.Put("/nix-cache-info", push(s.putCacheInfo))

	getHead("/{hash}.narinfo", read(s.getNarInfo))
	r.Put("/{hash}.narinfo", push(s.putNarInfo))
	getHead("/{hash}.ls", read(s.getListing))
	r.Put("/{hash}.ls", push(s.putListing))
	getHead("/nar/{file}", read(s.getNAR))
	r.Put("/nar/{file}", push(s.putNAR))
	getHead("/log/{drv}", read(s.getLog))
	r.Put("/log/{drv}", push(s.putLog))
	getHead("/realisations/{file}", read(s.getRealisation))
	r.Put("/realisations/{file}", push(s.putRealisation))
	getHead("/debuginfo/{id}", read(s.getDebugInfo))
	r.Put("/debuginfo/{id}", push(s.putDebugInfo))

	r.Get("/_cached/stats", s.scoped(catalog.ScopeAdmin, s.adminStats))

	r.NotFound(func(w http.ResponseWriter, r *http.Request) { writeError(w, r, errNotFound) })
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, fmt.Errorf("%w: %s", errMethod, r.Method))
	})
	s.router = r
}
