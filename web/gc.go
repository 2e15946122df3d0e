package web

import (
	"fmt"
	"net/http"
	"time"

	"github.com/nix-cached/cached/catalog"
)

// gcBody is the data of the collections page.
type gcBody struct {
	Runs  []catalog.GCRun
	Chart *chart // nil when there is nothing to draw
	Now   catalog.Stats
	Limit int
}

// GCLimit is how many collections the collections page lists.
const GCLimit = 100

// GC lists the latest garbage collections, newest first, under a chart of
// the bytes and paths each left in the cache and what the cache holds now:
// GET Prefix/gc. The error returned is for the request log (the page was
// answered already).
func (u *UI) GC(w http.ResponseWriter, r *http.Request) error {
	return u.page(w, r, func() error {
		runs, err := u.cat.GCRuns(r.Context(), GCLimit)
		if err != nil {
			return fmt.Errorf("web: GC runs: %w", err)
		}
		st, at, err := u.stats(r.Context())
		if err != nil {
			return err
		}
		body := gcBody{Runs: runs, Now: st, Limit: GCLimit, Chart: newChart(runs, st, at)}
		return u.render(w, r, http.StatusOK, gcTmpl, view{Title: "Garbage collections · cached", Nav: "gc", Body: body})
	})
}

// took is how long a run took, to the second.
func took(r catalog.GCRun) string {
	if r.Finished.Before(r.Started) {
		return "?"
	}
	return r.Finished.Sub(r.Started).Round(time.Second).String()
}
