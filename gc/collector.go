package gc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/storage"
)

var (
	// ErrLocked is returned when another collection (or sweep, or path
	// removal) holds the collector's lock, in this process or another.
	ErrLocked = errors.New("gc: another collection is running")
	// ErrLockLost ends a collection whose lock could not be renewed: another
	// process may have taken it over, so deleting more would be unsafe.
	ErrLockLost = errors.New("gc: lost the collection lock")
)

// lockName is the catalog lock every deleting operation of a Collector
// takes.
const lockName = "gc"

// Defaults of Options.
const (
	// DefaultRetention is how long an unpinned, unreferenced path is kept
	// after its last use.
	DefaultRetention = 365 * 24 * time.Hour
	// DefaultUploadLease is how long an uploaded NAR waits for its narinfo.
	DefaultUploadLease = 24 * time.Hour
	// defaultLockTTL is how long the lock outlives a process that died
	// holding it; it is renewed every third of it.
	defaultLockTTL = 5 * time.Minute
)

// Options configure a Collector.
type Options struct {
	Retention   time.Duration    // paths unused for longer are dead (default 365 days)
	MaxSize     int64            // quota on the stored NAR bytes; 0: none
	UploadLease time.Duration    // how long SweepUnclaimed leaves an unclaimed upload (default 24h)
	Now         func() time.Time // clock (default time.Now)
	Holder      string           // names this process in the lock (default "<hostname>:<pid>")
	Logger      *slog.Logger     // default slog.Default()
	BlobGrace   time.Duration    // how long blobs outlive their paths' deletion (default catalog.BlobGrace; negative: not at all)
	// MirrorRetention, when shorter than Retention, is the retention of
	// mirrored paths (catalog.Path.Mirrored) that UpstreamHas says an
	// upstream still has: they can be fetched again. 0: Retention.
	MirrorRetention time.Duration
	// UpstreamHas reports whether an upstream still serves the path
	// (signed by a configured key); nil: MirrorRetention never applies.
	UpstreamHas func(ctx context.Context, hashPart string) bool
}

// Collector removes dead paths, expired uploads and orphan blobs.
type Collector struct {
	cat     catalog.Catalog
	store   storage.Store
	opt     Options
	lockTTL time.Duration
	// afterPlan, when set (by tests), runs between Run's plan and its sweep.
	afterPlan func(context.Context)
	// beforeNARDelete, when set (by tests), runs before a NAR blob is deleted.
	beforeNARDelete func(key string)
}

// New returns a Collector over a catalog and the store holding its blobs.
func New(cat catalog.Catalog, store storage.Store, opt Options) (*Collector, error) {
	if cat == nil || store == nil {
		return nil, errors.New("gc: a catalog and a store are required")
	}
	if opt.Retention < 0 || opt.MaxSize < 0 || opt.UploadLease < 0 || opt.MirrorRetention < 0 {
		return nil, fmt.Errorf("gc: negative retention %v, quota %d or upload lease %v",
			opt.Retention, opt.MaxSize, opt.UploadLease)
	}
	if opt.Retention == 0 {
		opt.Retention = DefaultRetention
	}
	if opt.UploadLease == 0 {
		opt.UploadLease = DefaultUploadLease
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Holder == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "localhost"
		}
		opt.Holder = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	return &Collector{cat: cat, store: store, opt: opt, lockTTL: defaultLockTTL}, nil
}

// now returns the clock's time at the catalog's precision (milliseconds),
// so that comparisons here and in the catalog agree.
func (c *Collector) now() time.Time {
	return c.opt.Now().Truncate(time.Millisecond)
}

// running holds the lock holders busy in this process: the catalog lock
// is per holder, so two Collectors with one holder must be kept apart here.
var running = struct {
	sync.Mutex
	holders map[string]bool
}{holders: make(map[string]bool)}

// locked runs fn while holding the collector's lock, renewing it; fn's
// context is cancelled (cause ErrLockLost) if a renewal fails.
func (c *Collector) locked(ctx context.Context, fn func(context.Context) error) error {
	running.Lock()
	busy := running.holders[c.opt.Holder]
	running.holders[c.opt.Holder] = true
	running.Unlock()
	if busy {
		return ErrLocked
	}
	defer func() {
		running.Lock()
		delete(running.holders, c.opt.Holder)
		running.Unlock()
	}()

	ok, err := c.cat.TryLock(ctx, lockName, c.opt.Holder, c.lockTTL)
	if err != nil {
		return fmt.Errorf("gc: taking the lock: %w", err)
	}
	if !ok {
		return ErrLocked
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := c.cat.Unlock(uctx, lockName, c.opt.Holder); err != nil {
			c.opt.Logger.Warn("gc: releasing the lock (it expires by itself)", "err", err)
		}
	}()

	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(c.lockTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-rctx.Done():
				return
			case <-t.C:
			}
			ok, err := c.cat.TryLock(rctx, lockName, c.opt.Holder, c.lockTTL)
			if rctx.Err() != nil {
				return
			}
			switch {
			case err != nil:
				cancel(fmt.Errorf("%w: renewing it: %v", ErrLockLost, err))
				return
			case !ok:
				cancel(fmt.Errorf("%w: another holder took it over", ErrLockLost))
				return
			}
		}
	}()
	err = fn(rctx)
	cancel(nil)
	wg.Wait()
	return withLockLost(rctx, err)
}

// withLockLost makes err say that the lock was lost, when that is why ctx
// was cancelled and err does not say so already.
func withLockLost(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); err != nil && errors.Is(cause, ErrLockLost) && !errors.Is(err, ErrLockLost) {
		return fmt.Errorf("%w (%v)", cause, err)
	}
	return err
}

// Doomed is a path a collection removes (or would remove), and why.
type Doomed struct {
	HashPart  string
	StorePath string
	FileSize  int64 // size of its NAR file (a shared NAR counts for each path)
	CreatedAt time.Time
	LastUsed  time.Time
	Reason    string // one line
}

// Plan is what a collection removes when nothing changes meanwhile.
type Plan struct {
	Started     time.Time // the collection's start: nothing published since is removed
	Cutoff      time.Time // paths used before it are dead (retention, or later under the quota)
	Remove      []Doomed  // in deletion order: referrers before what they reference
	RemoveBytes int64     // bytes of the NAR files no remaining path names
	Paths       int       // published paths seen
	LivePaths   int       // paths kept
	LiveBytes   int64     // bytes of the distinct NAR files of the paths kept
	OverQuota   bool      // the data that must stay (pins and their closures, recent use) exceeds MaxSize
}

// Result is what a collection did.
type Result struct {
	Plan
	Removed      int           // paths removed
	Kept         []Doomed      // planned but refused at deletion: they became live meanwhile
	NARsRemoved  int           // NAR records whose blobs were deleted (leftovers of an earlier run included)
	BytesRemoved int64         // NAR and listing bytes deleted from storage
	Planning     time.Duration // how long the plan took
	Sweeping     time.Duration // how long removing the plan took, blob grace included
}

// Plan returns what Run would remove now, without changing anything.
func (c *Collector) Plan(ctx context.Context) (Plan, error) {
	ps, err := c.plan(ctx)
	if err != nil {
		return Plan{}, err
	}
	return ps.Plan, nil
}

// Run collects garbage: under the catalog's "gc" lock it plans, removes the
// planned paths (narinfo first, then the blobs it alone named), finishes
// the NAR deletions an earlier run left undone, and records the run.
func (c *Collector) Run(ctx context.Context) (Result, error) {
	var res Result
	err := c.locked(ctx, func(ctx context.Context) error {
		started := c.now()
		err := c.run(ctx, &res)
		if err == nil {
			c.opt.Logger.Info("gc: collection done", "paths_removed", res.Removed, "kept", len(res.Kept),
				"nars_removed", res.NARsRemoved, "bytes_removed", res.BytesRemoved,
				"live_paths", res.LivePaths, "live_bytes", res.LiveBytes, "over_quota", res.OverQuota,
				"planning", res.Planning.Round(time.Millisecond), "sweeping", res.Sweeping.Round(time.Millisecond))
		}
		if res.Started.IsZero() {
			res.Started = started
		}
		rec := catalog.GCRun{
			Holder:       c.opt.Holder,
			Started:      res.Started,
			Finished:     c.now(),
			PathsRemoved: res.Removed,
			NARsRemoved:  res.NARsRemoved,
			BytesRemoved: res.BytesRemoved,
			LivePaths:    res.LivePaths,
			LiveBytes:    res.LiveBytes,
		}
		if err != nil {
			rec.Error = oneLine(withLockLost(ctx, err).Error())
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if rerr := c.cat.RecordGCRun(rctx, rec); rerr != nil {
			if err != nil {
				return fmt.Errorf("%w (and recording the run: %v)", err, rerr)
			}
			return fmt.Errorf("gc: recording the run: %w", rerr)
		}
		return err
	})
	return res, err
}

// run plans and sweeps, filling res as it goes.
func (c *Collector) run(ctx context.Context, res *Result) error {
	start := time.Now()
	ps, err := c.plan(ctx)
	if err != nil {
		return err
	}
	res.Plan = ps.Plan
	res.Planning = time.Since(start)
	defer func(start time.Time) { res.Sweeping = time.Since(start) }(time.Now())
	if c.afterPlan != nil {
		c.afterPlan(ctx)
	}
	if err := c.sweep(ctx, ps, res); err != nil {
		return err
	}
	return c.finishDeleting(ctx, res)
}
