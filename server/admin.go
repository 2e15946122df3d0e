package server

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/nix-cached/cached/stats"
)

// adminStats serves what `cached stats` prints, as JSON, to admin tokens.
func (s *Server) adminStats(w http.ResponseWriter, r *http.Request) error {
	rep, err := stats.Collect(r.Context(), s.cat, time.Now())
	if err != nil {
		return err
	}
	body, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeSmall(w, r, typeJSON, string(body)+"\n")
	return nil
}
