package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
)

// A compressed upload can expand enormously: 150 KB of zstd to 4 GiB of
// zeros, 310 KB of xz to 2 GiB for 32 s of CPU. Two bounds apply. The
// expanded size of a NAR is limited (Options.MaxNARSize). And the work of
// expanding more than the network delivered is the uploader's: beyond
// freeExpansion, an upload that has expanded more than maxFreeRatio times
// what it received takes its uploader's lane, which one upload holds at a
// time. An uploader sending bombs on many connections then keeps at most
// one CPU busy with them, and other uploaders and readers keep the rest;
// a real NAR that compresses that well (a disk image of zeros) is still
// taken, one at a time per uploader.

// ErrTooLarge marks a NAR that expands beyond Options.MaxNARSize; the
// server answers 413 with the error's text.
var ErrTooLarge = errors.New("upload too large")

// DefaultMaxNARSize is the default bound on a NAR's expanded size: far
// above real store paths (Hydra refuses outputs over 2 GiB by default;
// the largest paths on cache.nixos.org are a few GiB).
const DefaultMaxNARSize = 64 << 30

const (
	// freeExpansion is how far any upload may expand at any ratio.
	freeExpansion = 256 << 20
	// maxFreeRatio is the expansion ratio past which an upload takes its
	// uploader's lane. Nix's compressions give 3x to 20x on store paths.
	maxFreeRatio = 100
)

type uploaderKey struct{}

// WithUploader returns ctx naming who uploads (a token's hash): the
// expansion of that uploader's uploads is bounded together.
func WithUploader(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, uploaderKey{}, id)
}

// lanes are the uploaders' lanes for expansion past maxFreeRatio.
type lanes struct {
	mu      sync.Mutex
	m       map[string]*lane
	waiting atomic.Int64 // uploads waiting for their uploader's lane
	taken   atomic.Int64 // uploads that took a lane, ever
}

type lane struct {
	ch    chan struct{} // holds a token while the lane is taken
	users int           // holders and waiters, to drop unused lanes
}

// take waits for id's lane and returns its release.
func (l *lanes) take(ctx context.Context, id string) (func(), error) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*lane{}
	}
	ln := l.m[id]
	if ln == nil {
		ln = &lane{ch: make(chan struct{}, 1)}
		l.m[id] = ln
	}
	ln.users++
	l.mu.Unlock()
	done := func() {
		l.mu.Lock()
		if ln.users--; ln.users == 0 {
			delete(l.m, id)
		}
		l.mu.Unlock()
	}
	l.waiting.Add(1)
	select {
	case ln.ch <- struct{}{}:
		l.waiting.Add(-1)
		l.taken.Add(1)
		return func() { <-ln.ch; done() }, nil
	case <-ctx.Done():
		l.waiting.Add(-1)
		done()
		return nil, ctx.Err()
	}
}

// stats reports uploads waiting for their uploader's lane now, and how
// many ever took one.
func (l *lanes) stats() (waiting, taken int64) { return l.waiting.Load(), l.taken.Load() }

// LaneStats reports uploads waiting for their uploader's lane now, and
// how many ever took one.
func (in *Ingester) LaneStats() (waiting, taken int64) { return in.lanes.stats() }

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// expansion bounds a decompressed stream: it fails past max bytes, and
// past freeExpansion at a ratio over maxFreeRatio to the compressed bytes
// read (in) it takes the uploader's lane for the rest of the upload.
type expansion struct {
	ctx         context.Context
	r           io.Reader
	in          *countingReader
	out         int64
	max         int64
	free, ratio int64 // freeExpansion and maxFreeRatio, but in tests
	lanes       *lanes
	release     func()
}

func (e *expansion) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	e.out += int64(n)
	if e.out > e.max {
		return n, fmt.Errorf("%w: the NAR expands to more than %d bytes (--max-nar-size)", ErrTooLarge, e.max)
	}
	if e.release == nil && e.out > e.free && e.out > e.ratio*e.in.n.Load() {
		id, _ := e.ctx.Value(uploaderKey{}).(string)
		release, lerr := e.lanes.take(e.ctx, id)
		if lerr != nil {
			return n, lerr
		}
		e.release = release
	}
	return n, err
}

// close releases the lane, if taken.
func (e *expansion) close() {
	if e.release != nil {
		e.release()
		e.release = nil
	}
}
