package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/go-chi/chi/v5"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/ingest"
	"github.com/nix-cached/cached/storepath"
	"github.com/nix-cached/cached/upstream"
)

// Pull-through. A GET of a narinfo the catalog does not have asks the
// upstreams (upstream.Puller): a narinfo signed by a key configured for
// them is served, signed by the cache too, with its URL pointing at
// mirror/<hash part>/<file>. A GET there serves the NAR from storage if it
// was stored already, and otherwise fetches it from the upstream that has
// the narinfo, streaming it to the client while ingest stores it as it
// came and verifies it (FileHash by its name, NarHash and NarSize against
// the narinfo). The path is then published like a pushed one, with the
// upstream's signatures kept and the cache's added, once its references
// are published (Nix substitutes references first); until then its NAR
// waits, unclaimed, as an upload would.
//
// The URL carries the hash part, so the route needs no state: a client
// holding an older mirror narinfo (Nix keeps them for a month), or a
// request after a restart or on another replica, is answered all the same.
//
// Every narinfo request asks the upstreams on a miss, a push's too: Nix
// asks with a GET before uploading as before substituting, with the same
// credentials, so the two cannot be told apart. A push then costs one
// narinfo lookup upstream per path (in parallel, as Nix asks; a miss is
// remembered), and never fetches a NAR: only a NAR request does.
//
// The invariant "a narinfo is served only with its NAR and its references"
// reads, for a mirrored path: its NAR is stored, or it is at the upstream
// that signed the narinfo; its references are published here or mirrored
// from an upstream that signed theirs.

// mirrorNarInfo answers the GET of a narinfo the catalog does not have
// from the upstreams; errNotFound when none has it signed. An upstream
// that cannot be asked looks like a miss: Nix remembers it for
// narinfo-cache-negative-ttl either way.
func (s *Server) mirrorNarInfo(ctx context.Context, hash string) (string, error) {
	f, err := s.cfg.Upstream.NarInfo(ctx, hash)
	if err != nil {
		return "", fmt.Errorf("%w: %v", errNotFound, err)
	}
	file, err := s.mirrorFile(f)
	if err != nil {
		return "", fmt.Errorf("%w: %v", errNotFound, err)
	}
	if err := s.referencesAvailable(ctx, f); err != nil {
		return "", fmt.Errorf("%w: %v", errNotFound, err)
	}
	ni := *f.NarInfo
	ni.URL = "mirror/" + f.NarInfo.HashPart() + "/" + file
	if err := s.ing.Sign(&ni); err != nil {
		return "", fmt.Errorf("%w: %v", errNotFound, err)
	}
	s.prefetch(hash, file)
	return ni.String(), nil
}

// maxRefLookups bounds the upstream lookups one narinfo's references make
// at once.
const maxRefLookups = 16

// referencesAvailable returns an error unless every reference of f is
// published here or served by an upstream (signed by a configured key):
// a narinfo is served only with its references. Nix asks for them next,
// so the lookups also bring their narinfos into the upstream client's
// cache, in parallel, ahead of the client's requests.
func (s *Server) referencesAvailable(ctx context.Context, f upstream.Found) error {
	self := f.NarInfo.HashPart()
	sem := make(chan struct{}, maxRefLookups)
	errs := make(chan error, len(f.NarInfo.References))
	n := 0
	for _, ref := range f.NarInfo.References {
		hash, _, _ := strings.Cut(ref, "-")
		if hash == self {
			continue
		}
		n++
		go func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if _, err := s.cat.NarInfo(ctx, hash); err == nil {
				errs <- nil
				return
			}
			if _, err := s.cfg.Upstream.NarInfo(ctx, hash); err != nil {
				errs <- fmt.Errorf("its reference %s is not available: %w", ref, err)
				return
			}
			errs <- nil
		}()
	}
	var first error
	for range n {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// mirrorFile returns the name the NAR file of f is stored under, once f
// proved usable here.
func (s *Server) mirrorFile(f upstream.Found) (string, error) {
	file, err := ingest.FileName(f.NarInfo.FileHash, f.NarInfo.Compression)
	if err != nil || f.NarInfo.FileSize == 0 {
		return "", fmt.Errorf("upstream narinfo of %s has no usable FileHash/FileSize/Compression: %v", f.NarInfo.StorePath, err)
	}
	if sp, err := storepath.Parse(s.cfg.StoreDir, f.NarInfo.StorePath); err != nil {
		return "", fmt.Errorf("upstream narinfo: %w", err)
	} else if sp.Hash != f.NarInfo.HashPart() {
		return "", errors.New("upstream narinfo: hash part mismatch")
	}
	return file, nil
}

// flights are the NAR downloads from upstreams under way, by file name:
// a request for a NAR being fetched waits for that download.
type flights struct {
	mu sync.Mutex
	m  map[string]chan struct{}
}

// join returns the channel closed when the download of file ends, and
// whether the caller must do it.
func (fl *flights) join(file string) (chan struct{}, bool) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if ch, ok := fl.m[file]; ok {
		return ch, false
	}
	if fl.m == nil {
		fl.m = map[string]chan struct{}{}
	}
	ch := make(chan struct{})
	fl.m[file] = ch
	return ch, true
}

func (fl *flights) done(file string) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	close(fl.m[file])
	delete(fl.m, file)
}

// getMirrorNAR serves the NAR of a mirrored path: from storage when it is
// there, otherwise fetched from its upstream as it is stored.
func (s *Server) getMirrorNAR(w http.ResponseWriter, r *http.Request) error {
	hash, file := chi.URLParam(r, "hash"), chi.URLParam(r, "file")
	if err := storepath.ValidateHashPart(hash); err != nil {
		return fmt.Errorf("%w: %v", errBadRequest, err)
	}
	if _, _, err := ingest.ParseNARName(file); err != nil {
		return fmt.Errorf("%w: %v", errNotFound, err)
	}
	if served, err := s.serveMirrored(w, r, hash, file); served || err != nil {
		return err
	}
	if s.cfg.Upstream == nil {
		return errNotFound
	}
	wait, lead := s.flights.join(file)
	if lead {
		return s.fetchMirrored(w, r, hash, file) // it ends the flight
	}
	// Another request is fetching it: serve what it stored.
	select {
	case <-wait:
	case <-r.Context().Done():
		return r.Context().Err()
	}
	if served, err := s.serveMirrored(w, r, hash, file); served || err != nil {
		return err
	}
	return errNotFound
}

// serveMirrored serves the mirrored NAR file from storage, if it is
// stored (and not quarantined), and reports whether it did.
func (s *Server) serveMirrored(w http.ResponseWriter, r *http.Request, hash, file string) (bool, error) {
	key := "nar/" + file
	n, err := s.cat.LookupNAR(r.Context(), key)
	switch {
	case errors.Is(err, catalog.ErrNotFound):
		return false, nil
	case err != nil:
		return false, err
	case n.Key != key || n.Quarantined:
		return false, nil
	}
	if err := s.serveBlob(w, r, key, typeNAR, file[:52], true); err != nil {
		return false, s.missingBlob(r, err, key, key)
	}
	if r.Method == http.MethodGet {
		s.cfg.Usage.NAR(key)
	}
	s.publishMirrored(r.Context(), hash, key)
	return true, nil
}

// fetchMirrored fetches the NAR file of the mirrored path hash from its
// upstream, streaming it to the client as it is stored and verified, and
// ends the flight of file once the NAR is committed (or refused).
//
// The download, the commit and the publication run on their own
// goroutine: the handler returns as soon as the NAR verified and the
// client has every byte, so the client's next request on this connection
// does not wait for the commit's syncs. Nothing is served from the cache's
// storage before the commit: a request for the NAR meanwhile waits for the
// flight.
func (s *Server) fetchMirrored(w http.ResponseWriter, r *http.Request, hash, file string) error {
	started := false
	defer func() {
		if !started {
			s.flights.done(file)
		}
	}()
	f, body, err := s.openUpstreamNAR(r.Context(), hash, file)
	if err != nil {
		return err
	}
	size := int64(f.NarInfo.FileSize)
	h := w.Header()
	s.blobHeaders(h, typeNAR, file[:52], true)
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	w.WriteHeader(http.StatusOK)
	// The client gets the bytes as they arrive, but for the last ones,
	// held back until the NAR verified: a NAR that does not is cut short,
	// so the client's transfer fails instead of ending as if whole.
	out := &holdBack{w: w, keep: min(size, holdBackBytes), left: size}
	if r.Method == http.MethodHead {
		out.w = io.Discard
	}
	get := r.Method == http.MethodGet
	verdict := make(chan error, 1)
	// Stored even if the client goes away: the next one gets it.
	ctx := context.WithoutCancel(r.Context())
	started = true
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		defer s.flights.done(file)
		verified := false
		err := s.storeMirrored(ctx, hash, file, f, body, out, func() { out.flush(); verified = true; verdict <- nil })
		if err != nil && !verified {
			verdict <- err
			return
		}
		if err == nil && get {
			s.cfg.Usage.NAR("nar/" + file)
		}
	}()
	if err := <-verdict; err != nil {
		s.log.Warn("mirror: a NAR from an upstream was refused", "upstream", f.Upstream, "file", file, "err", err)
		panic(http.ErrAbortHandler) // the client's transfer fails
	}
	return nil
}

// openUpstreamNAR starts the download of the NAR file of the mirrored
// path hash from the upstream that has its narinfo: errNotFound when no
// upstream has it as that file, errUpstream when the download fails.
func (s *Server) openUpstreamNAR(ctx context.Context, hash, file string) (upstream.Found, io.ReadCloser, error) {
	f, err := s.cfg.Upstream.NarInfo(ctx, hash)
	if err != nil {
		return upstream.Found{}, nil, fmt.Errorf("%w: %v", errNotFound, err)
	}
	if want, err := s.mirrorFile(f); err != nil || want != file {
		return upstream.Found{}, nil, fmt.Errorf("%w: %s is not the NAR of %s upstream (%v)", errNotFound, file, hash, err)
	}
	body, err := s.cfg.Upstream.NAR(ctx, f)
	if err != nil {
		return upstream.Found{}, nil, fmt.Errorf("%w: %w", errUpstream, err)
	}
	return f, body, nil
}

// storeMirrored stores the NAR file of the mirrored path hash as body
// brings it from f's upstream, writing the bytes to out as they come, and
// verified it (FileHash, NarHash, NarSize); verified, when set, is called
// once it proved sound, before the commit. The path is then published (or
// waits for its references). It closes body. An error before verified
// was called is the upstream's NAR refused; one after, a failed commit,
// which it logs.
func (s *Server) storeMirrored(ctx context.Context, hash, file string, f upstream.Found, body io.ReadCloser, out io.Writer, verified func()) error {
	defer body.Close()
	sound := false
	_, err := s.ing.NARExpecting(ctx, file, io.TeeReader(body, out), int64(f.NarInfo.FileSize), ingest.Expect{
		NarHash: f.NarInfo.NarHash, NarSize: int64(f.NarInfo.NarSize), Keep: true,
		Verified: func() {
			sound = true
			if verified != nil {
				verified()
			}
		}})
	if err != nil {
		if sound {
			s.log.Error("mirror: a verified NAR could not be stored", "upstream", f.Upstream, "file", file, "err", err)
		}
		return err
	}
	s.publishMirrored(ctx, hash, "nar/"+file)
	return nil
}

// holdBackBytes is how much of a NAR fetched from an upstream is held
// back from the client until it verified.
const holdBackBytes = 64 << 10

// holdBack passes writes to w but for the last keep bytes of left, which
// it holds until flush. Errors writing to w (a client that went away) are
// dropped: the download goes on for the cache's sake.
type holdBack struct {
	w          io.Writer
	keep, left int64
	tail       []byte
	failed     bool
}

func (h *holdBack) Write(p []byte) (int, error) {
	n := len(p)
	if pass := min(int64(len(p)), h.left-h.keep); pass > 0 {
		h.write(p[:pass])
		h.left -= pass
		p = p[pass:]
	}
	h.tail = append(h.tail, p...)
	h.left -= int64(len(p))
	return n, nil
}

func (h *holdBack) write(p []byte) {
	if !h.failed {
		if _, err := h.w.Write(p); err != nil {
			h.failed = true
		}
	}
}

func (h *holdBack) flush() { h.write(h.tail); h.tail = nil }
