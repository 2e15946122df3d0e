package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/nix-cached/cached/auth"
	"github.com/nix-cached/cached/ingest"
	"github.com/nix-cached/cached/realisation"
	"github.com/nix-cached/cached/storage"
)

// Limits on uploads held in memory.
const (
	maxSmallBody   = 1 << 20  // narinfo, realisation, nix-cache-info, debuginfo
	maxListingBody = 64 << 20 // .ls listings of huge NARs
	// uploadIdleTimeout ends an upload that sends nothing for this long.
	// Nix ≤ 2.32 retries a failed PUT with headers but no body and then
	// waits 300 s; this cuts that short.
	uploadIdleTimeout = 2 * time.Minute
)

// idleReader extends the connection's read deadline before every read, so
// a stalled upload fails after uploadIdleTimeout however long it is.
type idleReader struct {
	r  io.Reader
	rc *http.ResponseController
}

func (i *idleReader) Read(p []byte) (int, error) {
	_ = i.rc.SetReadDeadline(time.Now().Add(uploadIdleTimeout))
	return i.r.Read(p)
}

// bodyReader marks errors reading the request body as the client's.
type bodyReader struct{ r io.Reader }

func (b bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%w: reading the request body: %w", errBadRequest, err)
	}
	return n, err
}

// body returns the request body, limited to limit bytes on the wire and
// after undoing any Content-Encoding, with stalls cut off. The returned
// function must be called when done.
func body(w http.ResponseWriter, r *http.Request, limit int64) (io.Reader, func(), error) {
	rc := http.NewResponseController(w)
	var in io.Reader = http.MaxBytesReader(w, r.Body, limit)
	in = &idleReader{r: in, rc: rc}
	dec, closeDec, err := ingest.DecodeContentEncoding(r.Header.Get("Content-Encoding"), bodyReader{in})
	if err != nil {
		return nil, nil, err
	}
	done := func() {
		closeDec()
		_ = rc.SetReadDeadline(time.Time{})
	}
	return &limitedReader{r: dec, left: limit}, done, nil
}

// limitedReader fails with http.MaxBytesError once more than its limit has
// been read (a decompressed body can be far larger than the wire body).
type limitedReader struct {
	r    io.Reader
	left int64
	max  int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.max == 0 {
		l.max = l.left
	}
	if l.left < 0 {
		return 0, &http.MaxBytesError{Limit: l.max}
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return n, &http.MaxBytesError{Limit: l.max}
	}
	return n, err
}

// readSmall reads a whole small body.
func readSmall(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	in, done, err := body(w, r, limit)
	if err != nil {
		return nil, err
	}
	defer done()
	return io.ReadAll(in)
}

// created answers a successful upload.
func created(w http.ResponseWriter) {
	w.WriteHeader(http.StatusNoContent)
}

// putCacheInfo accepts the nix-cache-info that Nix writes when it thinks a
// cache is new; the server's own file is never replaced.
func (s *Server) putCacheInfo(w http.ResponseWriter, r *http.Request) error {
	if _, err := readSmall(w, r, maxSmallBody); err != nil {
		return err
	}
	created(w)
	return nil
}

func (s *Server) putNarInfo(w http.ResponseWriter, r *http.Request) error {
	hash, err := hashParam(r)
	if err != nil {
		return err
	}
	data, err := readSmall(w, r, maxSmallBody)
	if err != nil {
		return err
	}
	if _, err := s.ing.NarInfo(r.Context(), hash, data); err != nil {
		return err
	}
	created(w)
	return nil
}

func (s *Server) putNAR(w http.ResponseWriter, r *http.Request) error {
	file := chi.URLParam(r, "file")
	if enc := r.Header.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "identity") {
		return fmt.Errorf("%w: Content-Encoding %q on a NAR", ingest.ErrUnsupported, enc)
	}
	rc := http.NewResponseController(w)
	defer rc.SetReadDeadline(time.Time{}) //nolint:errcheck // best effort
	ctx := r.Context()
	if secret, ok := auth.Secret(r); ok {
		ctx = ingest.WithUploader(ctx, string(auth.Hash(secret)))
	}
	if _, err := s.ing.NAR(ctx, file, &idleReader{r: r.Body, rc: rc}, r.ContentLength); err != nil {
		return err
	}
	created(w)
	return nil
}

// putListing accepts a client's .ls listing. The listing served is the one
// computed from the verified NAR at upload time (byte-identical to Nix's),
// so the client's is only checked for being JSON.
func (s *Server) putListing(w http.ResponseWriter, r *http.Request) error {
	if _, err := hashParam(r); err != nil {
		return err
	}
	data, err := readSmall(w, r, maxListingBody)
	if err != nil {
		return err
	}
	if !json.Valid(data) {
		return fmt.Errorf("%w: listing is not JSON", errBadRequest)
	}
	created(w)
	return nil
}

func (s *Server) putLog(w http.ResponseWriter, r *http.Request) error {
	drv, err := drvParam(r)
	if err != nil {
		return err
	}
	in, done, err := body(w, r, s.cfg.MaxLogSize)
	if err != nil {
		return err
	}
	defer done()
	if _, err := storage.Put(r.Context(), s.store, "log/"+drv, in); err != nil {
		return err
	}
	created(w)
	return nil
}

// realisationParam returns the DrvOutput id of "/realisations/<id>.doi".
// Nix 2.34 escapes its "!" as %21.
func realisationParam(r *http.Request) (string, error) {
	file, err := url.PathUnescape(chi.URLParam(r, "file"))
	if err != nil {
		return "", fmt.Errorf("%w: realisation name: %v", errBadRequest, err)
	}
	id, ok := strings.CutSuffix(file, ".doi")
	if !ok || realisation.ValidateLegacyID(id) != nil {
		return "", fmt.Errorf("%w: %q is not <sha256:hash!output>.doi", errBadRequest, file)
	}
	return id, nil
}

// buildTraceParams returns the derivation and output of
// "/build-trace-v2/<drv>/<output>.doi".
func buildTraceParams(r *http.Request) (drv, output string, err error) {
	drv = chi.URLParam(r, "drv")
	output, ok := strings.CutSuffix(chi.URLParam(r, "file"), ".doi")
	if !ok || realisation.ValidateKey(drv, output) != nil {
		return "", "", fmt.Errorf("%w: %q is not <derivation>/<output>.doi", errBadRequest, drv+"/"+chi.URLParam(r, "file"))
	}
	return drv, output, nil
}

func (s *Server) putRealisation(w http.ResponseWriter, r *http.Request) error {
	id, err := realisationParam(r)
	if err != nil {
		return err
	}
	data, err := readSmall(w, r, maxSmallBody)
	if err != nil {
		return err
	}
	if err := s.ing.Realisation(r.Context(), id, data); err != nil {
		return err
	}
	created(w)
	return nil
}

func (s *Server) putBuildTrace(w http.ResponseWriter, r *http.Request) error {
	drv, output, err := buildTraceParams(r)
	if err != nil {
		return err
	}
	data, err := readSmall(w, r, maxSmallBody)
	if err != nil {
		return err
	}
	if err := s.ing.BuildTrace(r.Context(), drv, output, data); err != nil {
		return err
	}
	created(w)
	return nil
}

// debugInfoParam returns the 40-hex build id of "/debuginfo/<id>[.debug]".
func debugInfoParam(r *http.Request) (string, error) {
	id := strings.TrimSuffix(chi.URLParam(r, "id"), ".debug")
	if len(id) != 40 || strings.Trim(id, "0123456789abcdef") != "" {
		return "", fmt.Errorf("%w: %q is not a build id", errBadRequest, id)
	}
	return id, nil
}

// putDebugInfo stores a debuginfo entry unless one exists (as Nix does).
func (s *Server) putDebugInfo(w http.ResponseWriter, r *http.Request) error {
	id, err := debugInfoParam(r)
	if err != nil {
		return err
	}
	data, err := readSmall(w, r, maxSmallBody)
	if err != nil {
		return err
	}
	var di debugInfo
	if err := json.Unmarshal(data, &di); err != nil || di.Archive == "" || di.Member == "" {
		return fmt.Errorf("%w: debuginfo must be JSON with archive and member", errBadRequest)
	}
	key := "debuginfo/" + id
	if _, err := s.store.Stat(r.Context(), key); err == nil {
		created(w)
		return nil
	} else if !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	if _, err := storage.Put(r.Context(), s.store, key, strings.NewReader(string(data))); err != nil {
		return err
	}
	created(w)
	return nil
}
