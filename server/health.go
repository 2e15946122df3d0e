package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/storage"
)

// readyTimeout bounds how long /readyz waits for the catalog and storage.
const readyTimeout = 2 * time.Second

// healthz answers while the process serves HTTP.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeSmall(w, r, typeText, "ok\n")
}

// readyz answers 200 when the catalog and blob storage both answer, and
// 503 (logging why) when either does not: a load balancer should then send
// requests elsewhere, and Nix would get 5xx from this replica anyway.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	what, err := s.ready(ctx)
	if err != nil {
		if rec, ok := w.(*recorder); ok {
			rec.err = err
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Type", typeText)
		w.WriteHeader(http.StatusServiceUnavailable)
		if r.Method != http.MethodHead {
			_, _ = w.Write([]byte(what + " not ready\n"))
		}
		return
	}
	writeSmall(w, r, typeText, "ready\n"+s.spaceNote())
}

// lowSpace is the free space below which /readyz warns.
const lowSpace = 1 << 30

// spaceNote is /readyz's line on the storage's free space, if it has one.
// A full disk keeps the cache ready (it still serves what it holds), but
// says so: uploads are refused with 507 meanwhile.
func (s *Server) spaceNote() string {
	sr, ok := s.store.(storage.SpaceReporter)
	if !ok {
		return ""
	}
	free, capacity, err := sr.Space()
	switch {
	case err != nil:
		return "storage: free space unknown: " + err.Error() + "\n"
	case free < lowSpace:
		return fmt.Sprintf("storage: FULL: %d bytes free of %d; uploads fail (507) until space is freed\n", free, capacity)
	}
	return fmt.Sprintf("storage: %d bytes free of %d\n", free, capacity)
}

// ready checks the catalog and storage with lookups of names that do not
// exist: "not found" proves each answered.
func (s *Server) ready(ctx context.Context) (string, error) {
	if _, err := s.cat.NarInfo(ctx, "00000000000000000000000000000000"); err != nil && !errors.Is(err, catalog.ErrNotFound) {
		return "catalog", err
	}
	if _, err := s.store.Stat(ctx, "readyz-probe"); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return "storage", err
	}
	return "", nil
}
