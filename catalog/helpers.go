package catalog

import (
	"fmt"
	"time"
)

// WalkBatches serves WalkGraph and WalkPaths in implementations that read
// by keyset pagination: read returns up to size items whose key (hash
// part) sorts after after, in key order, and WalkBatches calls fn for each
// until a batch comes back short. The next batch is read while fn goes
// through the current one. Read errors are wrapped with what (e.g.
// "sqlite catalog: walk graph") and the position; an error from fn stops
// the walk and is returned as is, once the read under way has ended.
func WalkBatches[T any](what string, size int, key func(T) string, read func(after string) ([]T, error), fn func(T) error) error {
	type result struct {
		after string
		batch []T
		err   error
	}
	fetch := func(after string) <-chan result {
		ch := make(chan result, 1)
		go func() {
			batch, err := read(after)
			ch <- result{after, batch, err}
		}()
		return ch
	}
	next := fetch("")
	for next != nil {
		r := <-next
		if r.err != nil {
			return fmt.Errorf("%s after %q: %w", what, r.after, r.err)
		}
		next = nil
		if len(r.batch) >= size {
			next = fetch(key(r.batch[len(r.batch)-1]))
		}
		for _, item := range r.batch {
			if err := fn(item); err != nil {
				if next != nil {
					<-next
				}
				return err
			}
		}
	}
	return nil
}

// NodeKey is a GraphNode's key for WalkBatches.
func NodeKey(n GraphNode) string { return n.HashPart }

// PathKey is a Path's key for WalkBatches.
func PathKey(p Path) string { return p.HashPart }

// Millis is how the implementations store a time: Unix milliseconds, the
// zero time meaning now.
func Millis(t time.Time) int64 {
	if t.IsZero() {
		t = time.Now()
	}
	return t.UnixMilli()
}

// FromMillis reads back a time stored with Millis, in UTC.
func FromMillis(ms int64) time.Time {
	return time.UnixMilli(ms).UTC()
}
