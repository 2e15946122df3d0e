package server

import (
	"context"
	"errors"
	"sync"

	"github.com/nix-cached/cached/catalog"
)

// Mirrored paths are published once their NAR is committed, which happens
// off the request that fetched it: a path's references are fetched first
// (Nix substitutes them first), but their commits may end after the
// path's own. A path whose references are not all published yet waits in
// waiting, and is published as soon as the last of them is: the catalog
// thus only ever holds closed closures, and no path is left unclaimed
// because its commit won a race.

// waiting holds the mirrored paths whose NAR is stored but which wait for
// references to be published, by hash part.
type waiting struct {
	mu sync.Mutex
	m  map[string]waiter
}

// A waiter is a mirrored path waiting for references.
type waiter struct {
	key     string   // its NAR's key
	missing []string // the hash parts of references not published when it was tried
}

// maxWaiting bounds the paths waiting for references; past it a path is
// published on its next request instead.
const maxWaiting = 100_000

func (wt *waiting) add(hash string, w waiter) {
	wt.mu.Lock()
	defer wt.mu.Unlock()
	if wt.m == nil {
		wt.m = map[string]waiter{}
	}
	if len(wt.m) < maxWaiting {
		wt.m[hash] = w
	}
}

// take removes and returns the paths that were waiting for published.
func (wt *waiting) take(published string) map[string]string {
	wt.mu.Lock()
	defer wt.mu.Unlock()
	out := map[string]string{}
	for hash, w := range wt.m {
		for _, m := range w.missing {
			if m == published {
				out[hash] = w.key
				delete(wt.m, hash)
				break
			}
		}
	}
	return out
}

// publishMirrored publishes the mirrored path hash, whose NAR is stored at
// key, if it is not published yet, and then the paths that waited for it.
// A path whose references are not all published waits for them; any other
// failure is logged, and tried again on the path's next request.
func (s *Server) publishMirrored(ctx context.Context, hash, key string) {
	next := map[string]string{hash: key}
	for len(next) > 0 {
		ready := map[string]string{}
		for hash, key := range next {
			if !s.publishOne(ctx, hash, key) {
				continue
			}
			for h, k := range s.waiting.take(hash) {
				ready[h] = k
			}
		}
		next = ready
	}
}

// publishOne publishes one mirrored path and reports whether it is
// published now.
func (s *Server) publishOne(ctx context.Context, hash, key string) bool {
	if _, err := s.cat.Path(ctx, hash); err == nil {
		return true
	}
	if s.cfg.Upstream == nil {
		return false
	}
	f, err := s.cfg.Upstream.NarInfo(ctx, hash)
	if err != nil {
		return false
	}
	ni := *f.NarInfo
	ni.URL = key
	_, err = s.ing.MirroredNarInfo(ctx, hash, []byte(ni.String()))
	var missing *catalog.MissingReferencesError
	switch {
	case err == nil:
		return true
	case errors.As(err, &missing):
		s.waiting.add(hash, waiter{key: key, missing: missing.HashParts})
	default:
		s.log.Warn("mirror: a stored path could not be published", "path", ni.StorePath, "err", err)
	}
	return false
}
