package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/gc"
	"github.com/nix-cached/cached/ingest"
	"github.com/nix-cached/cached/storage"
	"github.com/nix-cached/cached/storepath"
)

// Content types, as Nix itself uses them.
const (
	typeCacheInfo = "text/x-nix-cache-info"
	typeNarInfo   = "text/x-nix-narinfo"
	typeNAR       = "application/x-nix-nar"
	typeJSON      = "application/json"
	typeText      = "text/plain; charset=utf-8"
)

// cacheControl says how long proxies may keep an answer. NARs are named by
// their hash and never change; a narinfo may gain signatures. Private
// caches (reads need a token) must not be kept by shared proxies.
func (s *Server) cacheControl(immutable bool) string {
	switch {
	case immutable && s.private:
		return "private, max-age=31536000, immutable"
	case immutable:
		return "public, max-age=31536000, immutable"
	case s.private:
		return "private, max-age=60"
	}
	return "public, max-age=60"
}

// writeSmall sends a small in-memory body (HEAD gets only the headers).
// The keys are canonical already, so the headers are set directly.
func writeSmall(w http.ResponseWriter, r *http.Request, ctype, body string) {
	h := w.Header()
	h["Content-Type"] = []string{ctype}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = io.WriteString(w, body)
	}
}

func (s *Server) cacheInfo(w http.ResponseWriter, r *http.Request) {
	writeSmall(w, r, typeCacheInfo, s.info)
}

func (s *Server) publicKey(w http.ResponseWriter, r *http.Request) {
	writeSmall(w, r, typeText, s.keys)
}

// hashParam returns the validated store path hash part of the request.
func hashParam(r *http.Request) (string, error) {
	h := chi.URLParam(r, "hash")
	if err := storepath.ValidateHashPart(h); err != nil {
		return "", fmt.Errorf("%w: %q is not a store path hash", errBadRequest, h)
	}
	return h, nil
}

// getNarInfo serves a narinfo from the catalog alone; a miss never touches
// blob storage.
func (s *Server) getNarInfo(w http.ResponseWriter, r *http.Request) error {
	hash, err := hashParam(r)
	if err != nil {
		return err
	}
	text, err := s.cat.NarInfo(r.Context(), hash)
	if errors.Is(err, catalog.ErrNotFound) && s.cfg.Upstream != nil {
		text, err = s.mirrorNarInfo(r.Context(), hash)
	}
	if err != nil {
		if errors.Is(err, catalog.ErrNotFound) || errors.Is(err, errNotFound) {
			s.cfg.Metrics.NarInfo(false)
		}
		return err
	}
	s.cfg.Metrics.NarInfo(true)
	s.cfg.Usage.Path(hash)
	w.Header()["Cache-Control"] = s.narInfoCache // shared, read-only
	writeSmall(w, r, typeNarInfo, text)
	return nil
}

// serveBlob streams a stored object with Range, HEAD and conditional
// request support. On disk the object is an *os.File, so the bytes go out
// through sendfile and memory use does not depend on the object's size.
// HEAD asks the storage for the size only (on S3 a GET would be wasted).
func (s *Server) serveBlob(w http.ResponseWriter, r *http.Request, key, ctype, etag string, immutable bool) error {
	h := w.Header()
	if r.Method == http.MethodHead {
		info, err := s.store.Stat(r.Context(), key)
		if err != nil {
			return err
		}
		s.blobHeaders(h, ctype, etag, immutable)
		h.Set("Accept-Ranges", "bytes")
		h.Set("Content-Length", strconv.FormatInt(info.Size, 10))
		w.WriteHeader(http.StatusOK)
		return nil
	}
	f, err := s.store.Open(r.Context(), key)
	if err != nil {
		return err
	}
	defer f.Close()
	s.blobHeaders(h, ctype, etag, immutable)
	http.ServeContent(w, r, "", time.Time{}, f)
	return nil
}

func (s *Server) blobHeaders(h http.Header, ctype, etag string, immutable bool) {
	h.Set("Content-Type", ctype)
	h.Set("Cache-Control", s.cacheControl(immutable))
	if etag != "" {
		h.Set("ETag", `"`+etag+`"`)
	}
}

func (s *Server) getNAR(w http.ResponseWriter, r *http.Request) error {
	file := chi.URLParam(r, "file")
	if _, _, err := ingest.ParseNARName(file); err != nil {
		// Nix asks with HEAD whether a NAR is there before it uploads
		// one, and prints only the status of the answer: a HEAD answers
		// whether the object is there, and the reason for refusing it
		// belongs to the PUT, whose body Nix prints. A GET of a name the
		// cache could never hold (a compression it does not read) is a
		// miss too.
		if r.Method == http.MethodHead || errors.Is(err, ingest.ErrUnsupported) {
			return errNotFound
		}
		return fmt.Errorf("%w: %v", errBadRequest, err)
	}
	key := "nar/" + file
	if r.Method == http.MethodHead {
		// Nix asks with HEAD whether to upload a NAR. The answer is the
		// catalog's: a blob may be in place while its upload has not yet
		// recorded it, and a client told "there" then publishes a
		// narinfo naming a NAR that is not ready (parallel uploads of one
		// NAR do this). Only a ready record of this very file counts,
		// and the storage must answer for the blob, as for a GET.
		n, err := s.cat.LookupNAR(r.Context(), key)
		if err != nil {
			return err
		}
		if n.Key != key || n.Quarantined {
			// An alias of a file stored under another name; or a damaged
			// NAR, which an upload replaces.
			return errNotFound
		}
		// Then as a GET would: the storage answers for the blob. A
		// missing one is counted, and Nix, told it is absent, uploads it
		// again, which restores it.
		if err := s.serveBlob(w, r, key, typeNAR, file[:52], true); err != nil {
			if errors.Is(s.missingBlob(r, err, key, key), errBlobMissing) {
				return errNotFound
			}
			return err
		}
		return nil
	}
	if p, ok := s.store.(storage.Presigner); ok && s.cfg.RedirectTTL > 0 && r.Method == http.MethodGet {
		// The bytes bypass the server. A missing NAR gets S3's 404, which
		// Nix treats like ours ("substitute gone").
		url, err := p.PresignGet(r.Context(), key, s.cfg.RedirectTTL)
		if err != nil {
			return err
		}
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, url, http.StatusTemporaryRedirect)
		s.cfg.Usage.NAR(key)
		return nil
	}
	// The file name starts with the hash of its contents: a strong ETag.
	if err := s.serveBlob(w, r, key, typeNAR, file[:52], true); err != nil {
		return s.missingBlob(r, err, key, key)
	}
	if r.Method == http.MethodGet {
		s.cfg.Usage.NAR(key)
	}
	return nil
}

// getListing serves the .ls listing that ingest computed from the NAR.
func (s *Server) getListing(w http.ResponseWriter, r *http.Request) error {
	hash, err := hashParam(r)
	if err != nil {
		return err
	}
	p, err := s.cat.Path(r.Context(), hash)
	if err != nil {
		return err
	}
	n, err := s.cat.LookupNAR(r.Context(), p.NARKey)
	if err != nil {
		return err
	}
	if n.ListingKey == "" {
		return errNotFound
	}
	if err := s.serveBlob(w, r, n.ListingKey, typeJSON, "", false); err != nil {
		return s.missingBlob(r, err, n.Key, n.ListingKey)
	}
	return nil
}

// missingBlob turns err, from serving the blob at key of the NAR recorded
// as narKey, into errBlobMissing (a 5xx, counted and logged) when the
// storage lost a blob the catalog records: a 404 would tell Nix, for an
// hour, that the path is absent, and it would rebuild it.
func (s *Server) missingBlob(r *http.Request, err error, narKey, key string) error {
	if !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	n, lerr := s.cat.LookupNAR(r.Context(), narKey)
	if lerr != nil {
		return err // not recorded (or not known now): absent indeed
	}
	s.cfg.Metrics.BlobMissing(strings.SplitN(key, "/", 2)[0])
	if !n.Quarantined {
		// Fence it off at once: its paths stop being served, and clients
		// go to another substituter or build, until it is pushed again.
		go func() {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), time.Minute)
			defer cancel()
			if _, err := gc.Quarantine(ctx, s.cat, n.Key, key+" is missing from storage", time.Now(), s.log); err != nil {
				s.log.Warn("quarantining a NAR whose blob is missing", "key", n.Key, "err", err)
			}
		}()
	}
	return fmt.Errorf("%w: %s", errBlobMissing, key)
}

// drvParam returns the validated derivation basename of a log request.
func drvParam(r *http.Request) (string, error) {
	drv := chi.URLParam(r, "drv")
	if _, err := storepath.ParseBase(drv); err != nil || !strings.HasSuffix(drv, ".drv") {
		return "", fmt.Errorf("%w: %q is not a derivation name", errBadRequest, drv)
	}
	return drv, nil
}

func (s *Server) getLog(w http.ResponseWriter, r *http.Request) error {
	drv, err := drvParam(r)
	if err != nil {
		return err
	}
	return s.serveBlob(w, r, "log/"+drv, typeText, "", false)
}

func (s *Server) getRealisation(w http.ResponseWriter, r *http.Request) error {
	id, err := realisationParam(r)
	if err != nil {
		return err
	}
	return s.serveRealisation(w, r, id)
}

func (s *Server) getBuildTrace(w http.ResponseWriter, r *http.Request) error {
	drv, output, err := buildTraceParams(r)
	if err != nil {
		return err
	}
	return s.serveRealisation(w, r, drv+"^"+output)
}

// serveRealisation serves a stored realisation of either format.
func (s *Server) serveRealisation(w http.ResponseWriter, r *http.Request, id string) error {
	body, err := s.cat.Realisation(r.Context(), id)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", s.cacheControl(false))
	writeSmall(w, r, typeJSON, string(body))
	return nil
}

// debugInfo is the JSON that index-debug-info uploads.
type debugInfo struct {
	Archive string `json:"archive"`
	Member  string `json:"member"`
}

// getDebugInfo serves a debuginfo entry. Its archive names the NAR as it
// was uploaded; when ingest stored that NAR under another name (zstd),
// the reference is rewritten to the stored file.
func (s *Server) getDebugInfo(w http.ResponseWriter, r *http.Request) error {
	id, err := debugInfoParam(r)
	if err != nil {
		return err
	}
	f, err := s.store.Open(r.Context(), "debuginfo/"+id)
	if err != nil {
		return err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxSmallBody))
	if err != nil {
		return fmt.Errorf("server: reading debuginfo %s: %w", id, err)
	}
	var di debugInfo
	if err := json.Unmarshal(raw, &di); err != nil {
		return fmt.Errorf("server: stored debuginfo %s is not JSON: %w", id, err)
	}
	if name, ok := strings.CutPrefix(di.Archive, "../"); ok {
		if n, err := s.cat.LookupNAR(r.Context(), name); err == nil && n.Key != name {
			di.Archive = "../" + n.Key
		}
	}
	var out bytes.Buffer
	if err := json.NewEncoder(&out).Encode(di); err != nil {
		return fmt.Errorf("server: encoding debuginfo: %w", err)
	}
	writeSmall(w, r, typeJSON, strings.TrimSuffix(out.String(), "\n"))
	return nil
}
