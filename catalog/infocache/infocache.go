// Package infocache keeps narinfos, and the hashes known to be absent, in
// memory in front of a catalog, so that a narinfo request costs a map
// lookup instead of a database query.
//
// Every process that writes the catalog records what it published or
// deleted in the catalog's change log (catalog.Catalog.Changes), in commit
// order. The cache reads that log every Poll and forgets what changed, so
// a push through another replica or a `cached gc` run beside the server
// is seen within a poll. Entries are served only while the log has been
// read completely within catalog.MaxNarInfoAge; a process that cannot
// read it (database down, stalled) asks the database instead. Deleters
// wait longer than that before deleting blobs (gc), so a narinfo served
// from memory never names a NAR that is gone.
package infocache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nix-cached/cached/catalog"
)

// Defaults.
const (
	DefaultMaxBytes = 128 << 20
	DefaultPoll     = 250 * time.Millisecond
	// pollPage is how many changes one query of the log reads.
	pollPage = 4096
	// forgetAfter: a process that could not read the change log for this
	// long may have missed entries that were pruned since; it starts over
	// with an empty cache.
	forgetAfter = time.Minute
	// keepChanges is how long change log entries are kept, and pruneEvery
	// how often a cache prunes older ones.
	keepChanges = time.Hour
	pruneEvery  = 10 * time.Minute
	// entryOverhead approximates the memory of a map entry beyond its
	// strings.
	entryOverhead = 64
)

// errMissing answers a hash the cache knows is not published; the request
// log does not print the reason of a 404, so it names no hash.
var errMissing = fmt.Errorf("narinfo cache: %w", catalog.ErrNotFound)

// Options tune a Catalog.
type Options struct {
	// MaxBytes bounds the memory of the entries (DefaultMaxBytes if zero).
	MaxBytes int64
	// Poll is how often the change log is read (DefaultPoll if zero); it
	// must be well under catalog.MaxNarInfoAge.
	Poll   time.Duration
	Logger *slog.Logger
}

// entry is a narinfo, or the knowledge that there is none.
type entry struct {
	text    string
	missing bool
}

func (e entry) size(hash string) int64 { return int64(len(hash) + len(e.text) + entryOverhead) }

// Catalog is a catalog.Catalog whose NarInfo answers from memory. Every
// other method is the wrapped catalog's; Publish, Quarantine, DeletePath
// and DeletePaths also forget what they changed at once.
type Catalog struct {
	catalog.Catalog
	opt   Options
	start time.Time // the origin of the monotonic times below

	mu sync.Mutex
	// Two generations approximate least-recently-used eviction: lookups
	// fill cur and move hits from old into it. Over the budget, entries
	// of old are dropped, in the order of evict; once old is empty, cur
	// becomes old. So the whole budget holds entries, and what goes is
	// what was not used since the last turn. Within old the order is the
	// map's, not the least recent first: a client walking more paths
	// than fit, over and over (a fleet substituting a closure larger
	// than the cache), would otherwise find none of them, as each is
	// dropped just before it is asked for again.
	cur, old           map[string]entry
	curBytes, oldBytes int64
	evict              []string // hash parts of old (and some gone from it), dropped from the end
	// epoch counts invalidations. A lookup that missed notes it before
	// asking the database and stores the answer only if it has not moved:
	// otherwise the answer may predate a change already forgotten.
	epoch uint64

	fresh  atomic.Int64 // start of the last complete read of the log (ns since start)
	seq    int64        // the last change applied; the poller's own
	failed bool         // the last read of the log failed (log once per outage)
	pruned time.Duration

	hits, misses atomic.Int64
	cancel       context.CancelFunc
	done         chan struct{}
}

// New wraps cat and starts following its change log; Close stops that and
// closes cat.
func New(ctx context.Context, cat catalog.Catalog, opt Options) *Catalog {
	if opt.MaxBytes <= 0 {
		opt.MaxBytes = DefaultMaxBytes
	}
	if opt.Poll <= 0 {
		opt.Poll = DefaultPoll
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	c := &Catalog{
		Catalog: cat,
		opt:     opt,
		start:   time.Now(),
		cur:     map[string]entry{},
		old:     map[string]entry{},
		done:    make(chan struct{}),
	}
	c.fresh.Store(-int64(forgetAfter) - 1) // nothing read yet: start over
	ctx, c.cancel = context.WithCancel(context.WithoutCancel(ctx))
	c.poll(ctx)
	go c.follow(ctx)
	return c
}

// now is the time since the cache started, on the monotonic clock.
func (c *Catalog) now() time.Duration { return time.Since(c.start) }

// usable reports whether entries may be served: the log was read
// completely within catalog.MaxNarInfoAge.
func (c *Catalog) usable() bool {
	return c.now()-time.Duration(c.fresh.Load()) < catalog.MaxNarInfoAge
}

// NarInfo answers from memory when it can, and remembers the database's
// answer (a narinfo or its absence) otherwise.
func (c *Catalog) NarInfo(ctx context.Context, hashPart string) (string, error) {
	usable := c.usable()
	c.mu.Lock()
	if usable {
		if e, ok := c.lookup(hashPart); ok {
			c.mu.Unlock()
			c.hits.Add(1)
			if e.missing {
				return "", errMissing
			}
			return e.text, nil
		}
	}
	epoch := c.epoch
	c.mu.Unlock()
	c.misses.Add(1)
	text, err := c.Catalog.NarInfo(ctx, hashPart)
	switch {
	case err == nil:
		c.remember(hashPart, entry{text: text}, epoch)
	case errors.Is(err, catalog.ErrNotFound):
		c.remember(hashPart, entry{missing: true}, epoch)
	}
	return text, err
}

// lookup finds an entry, moving it into the current generation; c.mu is
// held.
func (c *Catalog) lookup(hash string) (entry, bool) {
	if e, ok := c.cur[hash]; ok {
		return e, true
	}
	e, ok := c.old[hash]
	if ok {
		size := e.size(hash)
		delete(c.old, hash)
		c.oldBytes -= size
		c.cur[hash] = e
		c.curBytes += size
	}
	return e, ok
}

// put adds an entry to the current generation, first dropping entries of
// the old one, and turning generations, until it fits; c.mu is held.
func (c *Catalog) put(hash string, e entry) {
	size := e.size(hash)
	for c.curBytes+c.oldBytes+size > c.opt.MaxBytes && len(c.cur)+len(c.old) > 0 {
		if len(c.old) == 0 {
			c.turn()
		} else {
			c.dropOld()
		}
	}
	c.cur[hash] = e
	c.curBytes += size
}

// turn makes the current generation the old one (which is empty); c.mu
// is held.
func (c *Catalog) turn() {
	c.old, c.oldBytes = c.cur, c.curBytes
	c.cur, c.curBytes = make(map[string]entry, len(c.old)), 0
	c.evict = c.evict[:0]
	for h := range c.old {
		c.evict = append(c.evict, h)
	}
}

// dropOld drops one entry of the old generation; c.mu is held.
func (c *Catalog) dropOld() {
	for len(c.evict) > 0 {
		h := c.evict[len(c.evict)-1]
		c.evict = c.evict[:len(c.evict)-1]
		if e, ok := c.old[h]; ok {
			delete(c.old, h)
			c.oldBytes -= e.size(h)
			return
		}
	}
	// Every entry of old is named in evict; should one not be, it goes
	// with the rest rather than be kept over the budget.
	c.old, c.oldBytes = map[string]entry{}, 0
}

// remember stores what the database answered, unless something was
// forgotten since the question was asked or the log is not being read.
func (c *Catalog) remember(hash string, e entry, epoch uint64) {
	if !c.usable() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch != epoch {
		return
	}
	c.drop(hash)
	c.put(hash, e)
}

// drop forgets the entry of hash, in either generation; c.mu is held.
func (c *Catalog) drop(hash string) {
	if e, ok := c.cur[hash]; ok {
		c.curBytes -= e.size(hash)
		delete(c.cur, hash)
	}
	if e, ok := c.old[hash]; ok {
		c.oldBytes -= e.size(hash)
		delete(c.old, hash)
	}
}

// forget drops the entries of hashes (nil: all of them).
func (c *Catalog) forget(hashes []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	if hashes == nil {
		c.cur, c.old, c.curBytes, c.oldBytes, c.evict = map[string]entry{}, map[string]entry{}, 0, 0, nil
		return
	}
	for _, h := range hashes {
		c.drop(h)
	}
}

// follow reads the change log every Poll until the context ends.
func (c *Catalog) follow(ctx context.Context) {
	defer close(c.done)
	t := time.NewTicker(c.opt.Poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.poll(ctx)
		}
	}
}

// poll applies every change committed since the last one applied. Once a
// read comes back short, every change committed before the poll started
// has been seen, and entries may be served for catalog.MaxNarInfoAge
// from then on.
func (c *Catalog) poll(ctx context.Context) {
	started := c.now()
	if started-time.Duration(c.fresh.Load()) > forgetAfter {
		// Too long without the log (or never read): changes may have
		// been pruned unseen. Start over from the log's end.
		last, err := c.Catalog.LastChange(ctx)
		if err != nil {
			c.failure(ctx, err)
			return
		}
		c.forget(nil)
		c.seq = last
	} else {
		for {
			changes, err := c.Catalog.Changes(ctx, c.seq, pollPage)
			if err != nil {
				c.failure(ctx, err)
				return
			}
			if len(changes) > 0 {
				hashes := make([]string, len(changes))
				for i, ch := range changes {
					hashes[i] = ch.HashPart
				}
				c.forget(hashes)
				c.seq = changes[len(changes)-1].Seq
			}
			if len(changes) < pollPage {
				break
			}
		}
	}
	c.fresh.Store(int64(started))
	if c.failed {
		c.failed = false
		c.opt.Logger.Info("narinfo cache: reading the change log again")
	}
	if started-c.pruned >= pruneEvery {
		c.pruned = started
		if _, err := c.Catalog.PruneChanges(ctx, time.Now().Add(-keepChanges)); err != nil && ctx.Err() == nil {
			c.opt.Logger.Warn("narinfo cache: pruning the change log", "error", err)
		}
	}
}

// failure logs the first failed read of an outage; meanwhile narinfos
// come from the database.
func (c *Catalog) failure(ctx context.Context, err error) {
	if c.failed || ctx.Err() != nil {
		return
	}
	c.failed = true
	c.opt.Logger.Warn("narinfo cache: cannot read the change log; narinfos come from the database until it can",
		"error", err)
}

// Publish publishes p and forgets what was known of it.
func (c *Catalog) Publish(ctx context.Context, p catalog.Path, opts catalog.PublishOptions) error {
	err := c.Catalog.Publish(ctx, p, opts)
	if err == nil {
		c.forget([]string{p.HashPart})
	}
	return err
}

// Quarantine hides paths and forgets what was known of them.
func (c *Catalog) Quarantine(ctx context.Context, key, reason string, at time.Time) ([]string, error) {
	hidden, err := c.Catalog.Quarantine(ctx, key, reason, at)
	if len(hidden) > 0 {
		c.forget(hidden)
	}
	return hidden, err
}

// DeletePath deletes a path and forgets its narinfo.
func (c *Catalog) DeletePath(ctx context.Context, hashPart string, cond catalog.DeleteCondition) (catalog.Deleted, error) {
	d, err := c.Catalog.DeletePath(ctx, hashPart, cond)
	if err == nil {
		c.forget([]string{hashPart})
	}
	return d, err
}

// DeletePaths deletes paths and forgets the narinfos of those it deleted.
func (c *Catalog) DeletePaths(ctx context.Context, hashParts []string, cond catalog.DeleteCondition) ([]catalog.DeleteResult, error) {
	res, err := c.Catalog.DeletePaths(ctx, hashParts, cond)
	if err == nil {
		gone := make([]string, 0, len(res))
		for i, r := range res {
			if r.Err == nil {
				gone = append(gone, hashParts[i])
			}
		}
		if len(gone) > 0 {
			c.forget(gone)
		}
	}
	return res, err
}

// Stats are the cache's counters since it started.
type Stats struct {
	Hits, Misses int64 // NarInfo answers from memory, and from the database
	Entries      int
	Bytes        int64 // approximate
}

// CacheStats returns the cache's counters.
func (c *Catalog) CacheStats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{Hits: c.hits.Load(), Misses: c.misses.Load(), Entries: len(c.cur) + len(c.old), Bytes: c.curBytes + c.oldBytes}
}

// Close stops following the log and closes the wrapped catalog.
func (c *Catalog) Close() error {
	c.cancel()
	<-c.done
	return c.Catalog.Close()
}
