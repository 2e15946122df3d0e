package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/storepath"
)

// The client API: what `cached push` and `cached collect` ask beyond the
// binary cache protocol. Both need a push token.

// maxLookup is the most hash parts one lookup may ask about (4 MiB of
// request body): a client asks about a large store in several requests.
const maxLookup = 100_000

// lookupRequest asks which of these paths the cache serves.
type lookupRequest struct {
	Hashes []string `json:"hashes"` // store path hash parts
}

// lookupResponse gives, for every path asked about that the cache
// serves, its narinfo as served: the client checks the cache's signature
// over what it holds locally, so it knows the cache holds that content.
type lookupResponse struct {
	NarInfos map[string]string `json:"narinfos"`
}

// lookup answers "which of these do you serve" in bulk: one request for
// what would otherwise be thousands of narinfo GETs.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request) error {
	body, err := readSmall(w, r, 64*maxLookup)
	if err != nil {
		return err
	}
	var req lookupRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return fmt.Errorf("%w: lookup: body is not {\"hashes\": [...]}: %v", errBadRequest, err)
	}
	if len(req.Hashes) > maxLookup {
		return fmt.Errorf("%w: lookup: %d hashes, at most %d per request", errBadRequest, len(req.Hashes), maxLookup)
	}
	resp := lookupResponse{NarInfos: make(map[string]string)}
	for _, h := range req.Hashes {
		if err := storepath.ValidateHashPart(h); err != nil {
			return fmt.Errorf("%w: lookup: %q is not a store path hash", errBadRequest, h)
		}
		text, err := s.cat.NarInfo(r.Context(), h)
		switch {
		case err == nil:
			resp.NarInfos[h] = text
		case !errors.Is(err, catalog.ErrNotFound):
			return err
		}
	}
	return writeJSON(w, r, resp)
}

// pinRequest pins a published path under a name, as `cached pin add`.
type pinRequest struct {
	Name      string `json:"name"`
	StorePath string `json:"storePath"`
	Keep      int    `json:"keep"`    // previous pins of the name to keep
	Expires   string `json:"expires"` // a Go duration, "" for never
}

// addPin pins a published path for a pusher (`cached push --pin`).
func (s *Server) addPin(w http.ResponseWriter, r *http.Request) error {
	body, err := readSmall(w, r, maxSmallBody)
	if err != nil {
		return err
	}
	var req pinRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return fmt.Errorf("%w: pin: body is not JSON: %v", errBadRequest, err)
	}
	name := strings.TrimSpace(req.Name)
	if name == "" || len(name) > 200 || strings.ContainsAny(name, "\n\r\t") || req.Keep < 0 {
		return fmt.Errorf("%w: pin: a name of 1 to 200 characters on one line and keep ≥ 0 are required", errBadRequest)
	}
	sp, err := storepath.Parse(s.cfg.StoreDir, req.StorePath)
	if err != nil {
		return fmt.Errorf("%w: pin: %v", errBadRequest, err)
	}
	pin := catalog.Pin{Name: name, HashPart: sp.Hash, StorePath: req.StorePath, CreatedAt: time.Now()}
	if req.Expires != "" {
		d, err := time.ParseDuration(req.Expires)
		if err != nil || d <= 0 {
			return fmt.Errorf("%w: pin: expires %q is not a positive duration", errBadRequest, req.Expires)
		}
		pin.ExpiresAt = pin.CreatedAt.Add(d)
	}
	if err := s.cat.AddPin(r.Context(), pin, req.Keep); err != nil {
		return err
	}
	created(w)
	return nil
}

// writeJSON answers with v as JSON, never cached by proxies.
func writeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("server: encoding %T: %w", v, err)
	}
	w.Header().Set("Cache-Control", "no-store")
	writeSmall(w, r, typeJSON, string(body)+"\n")
	return nil
}
