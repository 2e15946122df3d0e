package server

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/web"
)

// uiRoutes mounts the web view (package web) under web.Prefix. Its pages
// are reads: a private cache answers them only with a read (or push, or
// admin) token, as it does narinfos, and without one it answers 401 with
// WWW-Authenticate: Basic, so that a browser asks for it (any user name,
// the token as password). The pages answer their own errors, as HTML.
func (s *Server) uiRoutes(getHead func(string, http.HandlerFunc)) {
	read := func(h func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
		return s.scoped(catalog.ScopeRead, func(w http.ResponseWriter, r *http.Request) error {
			noteError(w, h(w, r))
			return nil
		})
	}
	getHead(web.Prefix+"/paths", read(s.ui.Paths))
	getHead(web.Prefix+"/path/{hash}", read(func(w http.ResponseWriter, r *http.Request) error {
		return s.ui.Path(w, r, chi.URLParam(r, "hash"))
	}))
	getHead(web.Prefix+"/pins", read(s.ui.Pins))
	getHead(web.Prefix+"/gc", read(s.ui.GC))
	// The view's own root is the front page.
	toIndex := func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/", http.StatusSeeOther)
	}
	getHead(web.Prefix, toIndex)
	getHead(web.Prefix+"/", toIndex)
}

// noteError gives the request log the error of a response that was
// written already.
func noteError(w http.ResponseWriter, err error) {
	if rec, ok := w.(*recorder); ok && err != nil {
		rec.err = err
	}
}
