package catalog

import (
	"fmt"
	"time"
)

// WalkBatches serves WalkGraph and WalkPaths in implementations that read
// by keyset pagination: read returns up to size items whose key (hash
// part) sorts after after, in key order, and WalkBatches calls fn for each
// until a batch comes back short. Read errors are wrapped with what (e.g.
// "sqlite catalog: walk graph") and the position; an error from fn stops
// the walk and is returned as is.
func WalkBatches[T any](what string, size int, key func(T) string, read func(after string) ([]T, error), fn func(T) error) error {
	after := ""
	for {
		batch, err := read(after)
		if err != nil {
			return fmt.Errorf("%s after %q: %w", what, after, err)
		}
		for _, item := range batch {
			if err := fn(item); err != nil {
				return err
			}
		}
		if len(batch) < size {
			return nil
		}
		after = key(batch[len(batch)-1])
	}
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
