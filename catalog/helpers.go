package catalog

import (
	"fmt"
	"time"
)

// WalkBatches is WalkGraph for implementations that read the graph in
// batches by keyset pagination: read returns up to size nodes whose hash
// part sorts after after, in hash-part order, and WalkBatches calls fn for
// each until a batch comes back short. Read errors are wrapped with name
// (the implementation's name) and the position; an error from fn stops
// the walk and is returned as is.
func WalkBatches(name string, size int, read func(after string) ([]GraphNode, error), fn func(GraphNode) error) error {
	after := ""
	for {
		batch, err := read(after)
		if err != nil {
			return fmt.Errorf("%s: walk graph after %q: %w", name, after, err)
		}
		for _, n := range batch {
			if err := fn(n); err != nil {
				return err
			}
		}
		if len(batch) < size {
			return nil
		}
		after = batch[len(batch)-1].HashPart
	}
}

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
