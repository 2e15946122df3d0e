// Package usage records when store paths are used (narinfo requests, NAR
// downloads), without a database write per request: uses are gathered in
// memory and written in one transaction every few seconds and on shutdown.
// Garbage collection keeps what was used within the retention period.
//
// A path asked for again within Resolution of its last recorded use is
// not recorded again: its last use in the catalog is then at most that
// much older than the real one. Recording a use rewrites the path's row,
// and a busy cache asks for the same paths over and over: at a million
// paths, writing every use of the paths asked for in five seconds took
// a third of the server's time.
package usage

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Store is the part of the catalog the recorder writes to.
type Store interface {
	RecordUse(ctx context.Context, paths, nars map[string]time.Time) error
}

// Resolution is how much older than the real last use of a path its
// recorded last use may be; far below any sensible retention.
const Resolution = time.Minute

// maxRecent bounds the paths remembered as recently recorded, per
// generation (two are kept), so that the memory stays bounded (under 7
// MiB each) however many paths are asked for; the uses of paths beyond
// it are recorded every time.
const maxRecent = 1 << 17

// hashKey is a store path hash part (32 characters) as a map key that
// holds no pointer, so that the garbage collector does not scan the map.
type hashKey [32]byte

// Recorder gathers uses and writes them in batches.
type Recorder struct {
	store Store
	now   func() time.Time
	log   *slog.Logger

	mu    sync.Mutex
	paths map[string]time.Time // hash part → last use
	nars  map[string]time.Time // NAR key → last use
	// recent and older hold when the uses of paths last recorded were,
	// in Unix nanoseconds: recent those since turned, older those of
	// the Resolution before. Older ones are forgotten.
	recent, older map[hashKey]int64
	turned        time.Time
}

// New returns a recorder writing to store; now may be nil (time.Now).
func New(store Store, now func() time.Time, log *slog.Logger) *Recorder {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	return &Recorder{store: store, now: now, log: log,
		paths: make(map[string]time.Time), nars: make(map[string]time.Time),
		recent: make(map[hashKey]int64), older: make(map[hashKey]int64)}
}

// Path records a use of the published path with this hash part, unless
// one was recorded less than Resolution before. A nil Recorder records
// nothing.
func (r *Recorder) Path(hashPart string) {
	if r == nil {
		return
	}
	t := r.now()
	if len(hashPart) != len(hashKey{}) {
		r.mu.Lock()
		r.paths[hashPart] = t
		r.mu.Unlock()
		return
	}
	var k hashKey
	copy(k[:], hashPart)
	ns := t.UnixNano()
	r.mu.Lock()
	defer r.mu.Unlock()
	if t.Sub(r.turned) >= Resolution || t.Before(r.turned) {
		// Uses recorded before the previous turn are more than
		// Resolution old: forget them.
		r.older, r.recent, r.turned = r.recent, make(map[hashKey]int64, len(r.recent)), t
	}
	last, ok := r.recent[k]
	if !ok {
		last, ok = r.older[k]
	}
	if ok && ns >= last && ns-last < int64(Resolution) {
		return
	}
	r.paths[hashPart] = t
	if len(r.recent) < maxRecent {
		r.recent[k] = ns
	}
}

// NAR records a use of every path whose NAR has this key. A nil Recorder
// records nothing.
func (r *Recorder) NAR(key string) {
	if r == nil {
		return
	}
	t := r.now()
	r.mu.Lock()
	r.nars[key] = t
	r.mu.Unlock()
}

// Flush writes the uses gathered so far. On failure they are kept and
// merged into the next flush, so a database hiccup loses nothing.
func (r *Recorder) Flush(ctx context.Context) error {
	r.mu.Lock()
	paths, nars := r.paths, r.nars
	if len(paths) == 0 && len(nars) == 0 {
		r.mu.Unlock()
		return nil
	}
	r.paths, r.nars = make(map[string]time.Time), make(map[string]time.Time)
	r.mu.Unlock()
	if err := r.store.RecordUse(ctx, paths, nars); err != nil {
		r.mu.Lock()
		merge(r.paths, paths)
		merge(r.nars, nars)
		r.mu.Unlock()
		return err
	}
	return nil
}

// merge puts the uses of from into into, keeping the later time.
func merge(into, from map[string]time.Time) {
	for k, t := range from {
		if cur, ok := into[k]; !ok || t.After(cur) {
			into[k] = t
		}
	}
}

// Run flushes every interval until ctx is done, then flushes once more
// (with a short deadline of its own) so that a shutdown loses no use.
func (r *Recorder) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			if err := r.Flush(fctx); err != nil {
				r.log.Error("recording path uses at shutdown", "err", err)
			}
			cancel()
			return
		case <-t.C:
			if err := r.Flush(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("recording path uses", "err", err)
			}
		}
	}
}
