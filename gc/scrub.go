package gc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/storage"
)

// A scrub re-reads every stored NAR, at a bounded rate, the one checked
// longest ago first, so that it resumes where it stopped after a restart:
// the file must hash to its FileHash and decompress to its NarHash, and
// its listing must be there. A NAR found damaged or missing is
// quarantined (catalog.Quarantine): its paths and their referrers stop
// being served, so that clients fall back to another substituter or
// build, until they are pushed again.

// Defaults of ScrubOptions.
const (
	DefaultScrubRate     = 4 << 20             // bytes per second
	DefaultScrubInterval = 30 * 24 * time.Hour // between two checks of one NAR
	scrubBatch           = 100
	scrubLock            = "scrub"
)

// ScrubOptions configure a Scrubber.
type ScrubOptions struct {
	Rate     int64         // stored bytes read per second at most (default DefaultScrubRate)
	Interval time.Duration // a NAR is checked again this long after its last check (default DefaultScrubInterval)
	Holder   string        // names this process in the scrub lock (default "<hostname>:<pid>")
	Logger   *slog.Logger
	Now      func() time.Time
	// Damaged, when set, is told of every NAR quarantined.
	Damaged func(key string, hidden int)
}

// ScrubStats count what a Scrubber did.
type ScrubStats struct {
	NARs, Bytes, Damaged int64
}

// Scrubber checks stored NARs and quarantines the damaged.
type Scrubber struct {
	cat                  catalog.Catalog
	store                storage.Store
	opt                  ScrubOptions
	pace                 *pacer
	nars, bytes, damaged atomic.Int64
}

// NewScrubber returns a Scrubber over a catalog and the store of its blobs.
func NewScrubber(cat catalog.Catalog, store storage.Store, opt ScrubOptions) (*Scrubber, error) {
	if cat == nil || store == nil {
		return nil, errors.New("gc: scrub: a catalog and a store are required")
	}
	if opt.Rate < 0 || opt.Interval < 0 {
		return nil, fmt.Errorf("gc: scrub: negative rate %d or interval %v", opt.Rate, opt.Interval)
	}
	if opt.Rate == 0 {
		opt.Rate = DefaultScrubRate
	}
	if opt.Interval == 0 {
		opt.Interval = DefaultScrubInterval
	}
	if opt.Holder == "" {
		host, _ := os.Hostname()
		opt.Holder = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Scrubber{cat: cat, store: store, opt: opt, pace: newPacer(opt.Rate)}, nil
}

// Stats returns what the Scrubber did so far.
func (s *Scrubber) Stats() ScrubStats {
	return ScrubStats{NARs: s.nars.Load(), Bytes: s.bytes.Load(), Damaged: s.damaged.Load()}
}

// Run scrubs until ctx ends. One process at a time scrubs a catalog (a
// named lock, as collections take); the others wait their turn.
func (s *Scrubber) Run(ctx context.Context) {
	for ctx.Err() == nil {
		ok, err := s.cat.TryLock(ctx, scrubLock, s.opt.Holder, time.Hour)
		if err != nil && ctx.Err() == nil {
			s.opt.Logger.Warn("scrub: taking the lock", "err", err)
		}
		if !ok {
			sleepUntil(ctx, time.Now().Add(time.Minute)) //nolint:errcheck // ends with ctx
			continue
		}
		next, err := s.pass(ctx)
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		s.cat.Unlock(uctx, scrubLock, s.opt.Holder) //nolint:errcheck // the lock ends with its holder anyway
		cancel()
		wait := time.Until(next)
		switch {
		case errors.Is(err, errScrubbedUp):
			// Until the next NAR is due; new uploads are seen within
			// the hour.
			wait = min(max(wait, time.Second), time.Hour)
		case err != nil && ctx.Err() == nil:
			s.opt.Logger.Warn("scrub: stopped; trying again in a minute", "err", err)
			wait = time.Minute
		}
		sleepUntil(ctx, time.Now().Add(wait)) //nolint:errcheck // ends with ctx
	}
}

// errScrubbedUp ends a pass when every NAR was checked within Interval.
var errScrubbedUp = errors.New("every NAR checked recently")

// pass checks NARs, the one checked longest ago first, until all were
// checked within Interval (errScrubbedUp, and when the next one is due),
// ctx ends or a check fails.
func (s *Scrubber) pass(ctx context.Context) (time.Time, error) {
	for {
		queue, err := s.cat.ScrubQueue(ctx, scrubBatch)
		if err != nil {
			return time.Time{}, fmt.Errorf("gc: scrub: %w", err)
		}
		if len(queue) == 0 {
			return s.opt.Now().Add(s.opt.Interval), errScrubbedUp
		}
		for _, n := range queue {
			if due := n.Scrubbed.Add(s.opt.Interval); due.After(s.opt.Now()) {
				return due, errScrubbedUp
			}
			if err := s.Check(ctx, n); err != nil {
				return time.Time{}, err
			}
		}
	}
}

// Check checks one NAR, quarantines it if it is damaged, and records the
// check. An error means the check could not be made (storage or catalog
// unavailable): nothing is quarantined then.
func (s *Scrubber) Check(ctx context.Context, n catalog.NAR) error {
	issues, err := checkContentsPaced(ctx, s.store, n, s.pace)
	if err != nil {
		return err
	}
	if len(issues) == 0 && n.ListingKey != "" {
		if _, err := s.store.Stat(ctx, n.ListingKey); errors.Is(err, storage.ErrNotFound) {
			issues = append(issues, fmt.Sprintf("listing %s is missing", n.ListingKey))
		} else if err != nil {
			return fmt.Errorf("gc: scrub: %w", err)
		}
	}
	s.nars.Add(1)
	s.bytes.Add(n.FileSize)
	if len(issues) > 0 {
		if err := s.quarantine(ctx, n.Key, strings.Join(issues, "; ")); err != nil {
			return err
		}
	}
	if err := s.cat.MarkScrubbed(ctx, n.Key, s.opt.Now()); err != nil {
		return fmt.Errorf("gc: scrub: %w", err)
	}
	return nil
}

// quarantine fences off a damaged NAR and says so.
func (s *Scrubber) quarantine(ctx context.Context, key, why string) error {
	hidden, err := Quarantine(ctx, s.cat, key, why, s.opt.Now(), s.opt.Logger)
	if err != nil {
		return err
	}
	s.damaged.Add(1)
	if s.opt.Damaged != nil {
		s.opt.Damaged(key, len(hidden))
	}
	return nil
}

// Quarantine fences off the NAR at key, damaged for the reason why, and
// logs what it hid.
func Quarantine(ctx context.Context, cat catalog.Catalog, key, why string, at time.Time, log *slog.Logger) ([]string, error) {
	hidden, err := cat.Quarantine(ctx, key, why, at)
	if err != nil {
		return nil, fmt.Errorf("gc: quarantining %s: %w", key, err)
	}
	if len(hidden) > 0 {
		log.Warn("quarantined a damaged NAR: its paths and their referrers are not served until they are pushed again",
			"key", key, "why", why, "paths_hidden", len(hidden))
	}
	return hidden, nil
}

// pacer spreads reads so that they average at most rate bytes a second.
type pacer struct {
	rate  int64
	start time.Time
	total int64
}

func newPacer(rate int64) *pacer { return &pacer{rate: rate} }

// wait accounts n bytes read and sleeps until the average rate since the
// pacer started (or last idled) is within bounds.
func (p *pacer) wait(ctx context.Context, n int64) error {
	now := time.Now()
	if p.start.IsZero() || now.Sub(p.start) > time.Minute && p.total < p.rate {
		p.start, p.total = now, 0 // idle a while: do not burst to catch up
	}
	p.total += n
	due := p.start.Add(time.Duration(float64(p.total) / float64(p.rate) * float64(time.Second)))
	return sleepUntil(ctx, due)
}
