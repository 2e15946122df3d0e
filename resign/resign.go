// Package resign keeps every published narinfo signed by exactly the
// server's current keys, so that signing keys can be rolled over.
//
// Narinfos are signed when they are pushed. When the key set changes (a
// key added, a key's name retired), a pass walks every published path, in
// hash-part order and at a bounded rate, and rewrites the narinfos that a
// push would now sign otherwise (ingest.Ingester.Resign): the current
// keys' signatures made again, those under retired names removed, the
// others (a client's, an upstream's) kept. Each rewrite is a
// compare-and-swap (catalog.ReplaceNarInfo), so a push in between is never
// overwritten, and it goes through the change log, so the narinfo caches
// of every replica forget the old text.
//
// The pass's state is one record in the catalog (catalog.ResignState): the
// fingerprint of the key set it works toward (Fingerprint), the last hash
// part checked, and counts. A pass resumes where it stopped after a
// restart, and a start with an unchanged key set reads no path. One
// process runs a pass at a time, under a named catalog lock. A process
// whose key set differs from the record's starts a new pass only if it
// started after that pass did: during a rolling restart the newest
// configuration wins and the older replicas leave it alone.
//
// A pass also checks the paths the change log names after the pass
// began, which its walk may have passed already, and once it is complete
// every process with its key set keeps following the change log, so that
// what a replica still running with the previous keys publishes is
// re-signed within seconds.
package resign

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/signing"
)

// Defaults of Options.
const (
	DefaultRate  = 1000 // paths checked per second
	DefaultPoll  = 10 * time.Second
	DefaultRetry = time.Minute
)

const (
	lockName   = "resign"
	lockTTL    = 10 * time.Minute
	renewEvery = time.Minute
	// catchUpEvery: a pass checks the paths the change log names this
	// often, well before servers prune the log (an hour).
	catchUpEvery = 5 * time.Minute
	pageSize     = 256  // paths read, and checked between two saves of the state
	changePage   = 1000 // change log entries read at once
	attempts     = 5    // compare-and-swap attempts on one path
)

// Signer gives the narinfo a push would publish now for a published one:
// ingest.Ingester.Resign. It must be deterministic: a narinfo signed as it
// should be comes back unchanged.
type Signer interface {
	Resign(narinfo string) (string, error)
}

// Options configure a Resigner.
type Options struct {
	Keys    []signing.PublicKey // the keys the server signs with
	Retired []string            // key names whose signatures are removed
	// Rate bounds the paths a pass checks per second, and the narinfos
	// rewritten per second while following the change log (default
	// DefaultRate).
	Rate   float64
	Holder string // names this process in the lock and the state (default "<hostname>:<pid>")
	Logger *slog.Logger
	// Started is when this process took its key set (default: when New
	// was called): the newest configuration's pass wins.
	Started time.Time
	Poll    time.Duration // how often the change log is followed (default DefaultPoll)
	Retry   time.Duration // how often a pass that cannot run now is tried again (default DefaultRetry)

	now   func() time.Time                                 // default time.Now
	sleep func(ctx context.Context, d time.Duration) error // default sleepFor
}

// Stats are what a Resigner did, and where the pass stands as it last saw
// it.
type Stats struct {
	Checked   int64 // paths this process checked
	Rewritten int64 // narinfos this process rewrote
	Pending   int64 // paths the pass toward this process's key set has yet to check
	Done      bool  // that pass is complete
}

// Resigner re-signs narinfos in the background.
type Resigner struct {
	cat    catalog.Catalog
	signer Signer
	opt    Options
	target string
	pace   *pacer

	checked, rewritten, pending atomic.Int64
	done                        atomic.Bool

	seq      int64 // the change log position this process followed to (-1: not read yet)
	mu       sync.Mutex
	deferred time.Time // the Started of the newer pass last logged
}

// Fingerprint identifies a key set: the public keys and the retired key
// names, in any order.
func Fingerprint(keys []signing.PublicKey, retired []string) string {
	pubs := make([]string, len(keys))
	for i, k := range keys {
		pubs[i] = k.String()
	}
	slices.Sort(pubs)
	retired = slices.Clone(retired)
	slices.Sort(retired)
	h := sha256.New()
	for _, p := range pubs {
		fmt.Fprintf(h, "key %s\n", p)
	}
	for _, r := range slices.Compact(retired) {
		fmt.Fprintf(h, "retired %s\n", r)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// New returns a Resigner for the key set opt describes; signer signs with
// those keys and strips those retired names.
func New(cat catalog.Catalog, signer Signer, opt Options) (*Resigner, error) {
	if cat == nil || signer == nil {
		return nil, errors.New("resign: a catalog and a signer are required")
	}
	if len(opt.Keys) == 0 {
		return nil, errors.New("resign: no signing key")
	}
	for _, k := range opt.Keys {
		if slices.Contains(opt.Retired, k.Name()) {
			return nil, fmt.Errorf("resign: key %s both signs and is retired", k.Name())
		}
	}
	if opt.Rate < 0 || opt.Poll < 0 || opt.Retry < 0 {
		return nil, fmt.Errorf("resign: negative rate %v, poll %v or retry %v", opt.Rate, opt.Poll, opt.Retry)
	}
	if opt.Rate == 0 {
		opt.Rate = DefaultRate
	}
	if opt.Poll == 0 {
		opt.Poll = DefaultPoll
	}
	if opt.Retry == 0 {
		opt.Retry = DefaultRetry
	}
	if opt.Holder == "" {
		host, _ := os.Hostname()
		opt.Holder = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.now == nil {
		opt.now = time.Now
	}
	if opt.sleep == nil {
		opt.sleep = sleepFor
	}
	if opt.Started.IsZero() {
		opt.Started = opt.now()
	}
	r := &Resigner{cat: cat, signer: signer, opt: opt, target: Fingerprint(opt.Keys, opt.Retired), seq: -1}
	r.pace = &pacer{rate: opt.Rate, now: opt.now, sleep: opt.sleep}
	return r, nil
}

// Target is the fingerprint of the Resigner's key set.
func (r *Resigner) Target() string { return r.target }

// Stats returns what the Resigner did so far.
func (r *Resigner) Stats() Stats {
	return Stats{Checked: r.checked.Load(), Rewritten: r.rewritten.Load(), Pending: r.pending.Load(), Done: r.done.Load()}
}

// Run re-signs until ctx ends: it runs or resumes the pass toward its key
// set when there is one to run, and follows the change log once it is
// complete. Failures are logged and tried again after Retry.
func (r *Resigner) Run(ctx context.Context) {
	for ctx.Err() == nil {
		wait, err := r.Step(ctx)
		if err != nil && ctx.Err() == nil {
			r.opt.Logger.Warn("re-signing narinfos: stopped; trying again later", "err", err, "retry_in", r.opt.Retry)
			wait = r.opt.Retry
		}
		r.opt.sleep(ctx, wait) //nolint:errcheck // ends with ctx
	}
}

// Step does what is to be done now, and returns how long to wait before
// the next step: it follows the change log if the pass toward this key
// set is complete, runs it (to its end) if this process can, and does
// nothing while a newer configuration's pass is under way.
func (r *Resigner) Step(ctx context.Context) (time.Duration, error) {
	if r.seq < 0 {
		seq, err := r.cat.LastChange(ctx)
		if err != nil {
			return 0, fmt.Errorf("resign: %w", err)
		}
		r.seq = seq
	}
	st, err := r.state(ctx)
	if err != nil {
		return 0, err
	}
	switch {
	case st.Target == r.target && !st.Completed.IsZero():
		r.observe(st)
		// The pass checked what changed up to st.Seq, its own rewrites
		// included: follow from there.
		r.seq = max(r.seq, st.Seq)
		return r.opt.Poll, r.follow(ctx)
	case r.newer(st):
		r.observe(st)
		return r.opt.Retry, nil
	}
	ok, err := r.cat.TryLock(ctx, lockName, r.opt.Holder, lockTTL)
	if err != nil {
		return 0, fmt.Errorf("resign: taking the lock: %w", err)
	}
	if !ok {
		r.observe(st)
		return r.opt.Retry, nil // another process runs the pass
	}
	err = r.lead(ctx)
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	r.cat.Unlock(uctx, lockName, r.opt.Holder) //nolint:errcheck // the lock ends with its holder anyway
	cancel()
	return 0, err
}

// state reads the state record; a zero one when there is none yet.
func (r *Resigner) state(ctx context.Context) (catalog.ResignState, error) {
	st, err := r.cat.ResignState(ctx)
	if errors.Is(err, catalog.ErrNotFound) {
		return catalog.ResignState{}, nil
	}
	if err != nil {
		return st, fmt.Errorf("resign: %w", err)
	}
	return st, nil
}

// newer reports whether st is another key set's pass that started after
// this process did (logging it once): that configuration wins.
func (r *Resigner) newer(st catalog.ResignState) bool {
	if st.Target == r.target || st.Target == "" || !st.Started.After(r.opt.Started) {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.deferred.Equal(st.Started) {
		r.deferred = st.Started
		r.opt.Logger.Warn("re-signing narinfos: a process started later signs with other keys; leaving its narinfos alone (restart this one with the same keys)",
			"their_keys", st.KeyNames, "their_retired", st.Retired, "holder", st.Holder, "since", st.Started)
	}
	return true
}

// observe records where the pass toward this key set stands, for Stats.
func (r *Resigner) observe(st catalog.ResignState) {
	switch {
	case st.Target != r.target:
		r.pending.Store(0)
		r.done.Store(false)
	case !st.Completed.IsZero():
		r.pending.Store(0)
		r.done.Store(true)
	default:
		r.pending.Store(max(st.Total-st.Checked, 0))
		r.done.Store(false)
	}
}

// lead runs the pass toward this key set, or resumes it, to its end. The
// caller holds the lock.
func (r *Resigner) lead(ctx context.Context) error {
	st, err := r.state(ctx) // again, under the lock
	if err != nil {
		return err
	}
	log := r.opt.Logger
	switch {
	case r.newer(st):
		return nil
	case st.Target == r.target && !st.Completed.IsZero():
		return nil
	case st.Target == r.target:
		log.Info("re-signing narinfos: resuming the pass", "keys", st.KeyNames, "retired", st.Retired,
			"checked", st.Checked, "of", st.Total)
	default:
		first := st.Target == ""
		if st, err = r.begin(ctx); err != nil {
			return err
		}
		switch {
		case first && st.Total > 0:
			log.Info("re-signing narinfos: a pass starts, to check every path against the signing keys once",
				"keys", st.KeyNames, "retired", st.Retired, "paths", st.Total, "rate", r.opt.Rate)
		case !first:
			log.Info("re-signing narinfos: a pass starts, the key set changed", "keys", st.KeyNames,
				"retired", st.Retired, "paths", st.Total, "rate", r.opt.Rate)
		}
	}
	r.observe(st)
	// What the change log names after st.Seq was published or rewritten
	// since the pass began, and the walk may have passed it: it is checked
	// too, every catchUpEvery (before the log is pruned) and at the end,
	// from where the pass's record says.
	r.seq = st.Seq
	catchUp := func() error {
		_, err := r.followChanges(ctx, func(rewritten int64) error {
			st.Rewritten += rewritten
			st.Seq = r.seq
			return r.save(ctx, &st)
		})
		return err
	}
	renewed, caughtUp := r.opt.now(), r.opt.now()
	for {
		page, err := r.cat.NarInfosAfter(ctx, st.Cursor, pageSize)
		if err != nil {
			return fmt.Errorf("resign: %w", err)
		}
		for _, ni := range page {
			if err := r.pace.wait(ctx); err != nil {
				return err
			}
			changed, err := r.check(ctx, ni.HashPart, ni.NarInfo, false)
			if err != nil {
				return err
			}
			st.Checked++
			if changed {
				st.Rewritten++
			}
			st.Cursor = ni.HashPart
		}
		if len(page) < pageSize {
			break
		}
		if err := r.save(ctx, &st); err != nil {
			return err
		}
		if r.opt.now().Sub(renewed) >= renewEvery {
			if ok, err := r.cat.TryLock(ctx, lockName, r.opt.Holder, lockTTL); err != nil || !ok {
				return fmt.Errorf("resign: lost the lock (%v)", err)
			}
			renewed = r.opt.now()
		}
		if r.opt.now().Sub(caughtUp) >= catchUpEvery {
			if err := catchUp(); err != nil {
				return err
			}
			caughtUp = r.opt.now()
		}
	}
	if err := catchUp(); err != nil {
		return err
	}
	st.Completed = r.opt.now()
	if err := r.save(ctx, &st); err != nil {
		return err
	}
	if st.Checked+st.Rewritten > 0 {
		log.Info("re-signing narinfos: done", "keys", st.KeyNames, "retired", st.Retired,
			"checked", st.Checked, "rewritten", st.Rewritten, "took", st.Completed.Sub(st.Started).Round(time.Millisecond))
	}
	return nil
}

// begin records a new pass toward this key set.
func (r *Resigner) begin(ctx context.Context) (catalog.ResignState, error) {
	seq, err := r.cat.LastChange(ctx)
	if err != nil {
		return catalog.ResignState{}, fmt.Errorf("resign: %w", err)
	}
	stats, err := r.cat.Stats(ctx, r.opt.now(), nil)
	if err != nil {
		return catalog.ResignState{}, fmt.Errorf("resign: counting paths: %w", err)
	}
	names := make([]string, len(r.opt.Keys))
	for i, k := range r.opt.Keys {
		names[i] = k.Name()
	}
	now := r.opt.now()
	st := catalog.ResignState{
		Target:   r.target,
		KeyNames: names,
		Retired:  slices.Clone(r.opt.Retired),
		Total:    int64(stats.Paths),
		Seq:      seq,
		Started:  now,
	}
	return st, r.save(ctx, &st)
}

// save stores st, by this holder, now.
func (r *Resigner) save(ctx context.Context, st *catalog.ResignState) error {
	st.Holder, st.Updated = r.opt.Holder, r.opt.now()
	if err := r.cat.SaveResignState(ctx, *st); err != nil {
		return fmt.Errorf("resign: %w", err)
	}
	r.observe(*st)
	return nil
}
