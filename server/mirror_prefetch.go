package server

import (
	"context"
	"errors"
	"io"
	"sync"

	"github.com/nix-cached/cached/catalog"
)

// Prefetching. When a mirrored narinfo is served, its NAR is likely to be
// asked for next: a substitution asks for the narinfos of a whole closure
// first, then for the NARs one after another. A few workers fetch the
// NARs of the narinfos served, newest first, so that most are in
// storage by the time the client asks (a client asking for one being
// fetched waits for that download). A push that finds a path upstream
// does not upload it, and the cache then holds it too: what a machine
// uses survives an upstream outage. Config.UpstreamPrefetch turns it off.

const (
	// prefetchWorkers is how many NARs are prefetched at once: most of a
	// small NAR's time goes to its commit's syncs, which overlap.
	prefetchWorkers = 4
	// prefetchQueue bounds the NARs waiting to be prefetched; past it the
	// oldest is dropped (and fetched when a client asks for it).
	prefetchQueue = 4096
)

// prefetchJob is a mirrored NAR to fetch ahead of its request.
type prefetchJob struct{ hash, file string }

// prefetcher is the stack of NARs to prefetch and its workers, started
// on first use. The last narinfo served is fetched first: Nix asks for a
// closure's narinfos from the top down, then substitutes from the bottom
// up.
type prefetcher struct {
	mu      sync.Mutex
	cond    *sync.Cond
	jobs    []prefetchJob
	started bool
	closed  bool
}

// prefetch queues the NAR file of the mirrored path hash.
func (s *Server) prefetch(hash, file string) {
	if !s.cfg.UpstreamPrefetch || s.cfg.Upstream == nil {
		return
	}
	p := &s.pre
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	if !p.started {
		p.started = true
		p.cond = sync.NewCond(&p.mu)
		for range prefetchWorkers {
			s.bg.Add(1)
			go func() {
				defer s.bg.Done()
				for {
					j, ok := p.next()
					if !ok {
						return
					}
					s.prefetchOne(j)
				}
			}()
		}
	}
	if len(p.jobs) == prefetchQueue {
		p.jobs = append(p.jobs[:0], p.jobs[1:]...) // the oldest goes: a client's request fetches it
	}
	p.jobs = append(p.jobs, prefetchJob{hash, file})
	p.cond.Signal()
}

// next waits for a job and takes the newest; false once stopped.
func (p *prefetcher) next() (prefetchJob, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.jobs) == 0 && !p.closed {
		p.cond.Wait()
	}
	if p.closed {
		return prefetchJob{}, false
	}
	j := p.jobs[len(p.jobs)-1]
	p.jobs = p.jobs[:len(p.jobs)-1]
	return j, true
}

// stop ends the workers after their current jobs, dropping the rest.
func (p *prefetcher) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	p.jobs = nil
	if p.cond != nil {
		p.cond.Broadcast()
	}
}

// prefetchOne fetches one NAR unless it is stored or being fetched.
func (s *Server) prefetchOne(j prefetchJob) {
	ctx := context.Background()
	key := "nar/" + j.file
	if n, err := s.cat.LookupNAR(ctx, key); err == nil && n.Key == key && !n.Quarantined {
		s.publishMirrored(ctx, j.hash, key)
		return
	} else if err != nil && !errors.Is(err, catalog.ErrNotFound) {
		return
	}
	if _, lead := s.flights.join(j.file); !lead {
		return
	}
	defer s.flights.done(j.file)
	f, body, err := s.openUpstreamNAR(ctx, j.hash, j.file)
	if err != nil {
		s.log.Debug("mirror: prefetch failed", "file", j.file, "err", err)
		return
	}
	if err := s.storeMirrored(ctx, j.hash, j.file, f, body, io.Discard, nil); err != nil {
		s.log.Warn("mirror: a NAR from an upstream was refused", "upstream", f.Upstream, "file", j.file, "err", err)
	}
}
