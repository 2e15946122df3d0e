package ingest

import (
	"fmt"
	"hash/fnv"
	"testing"
)

// TestLockSharedStripe takes two keys that share a lock stripe at once; a
// lock that took the stripe twice would deadlock here.
func TestLockSharedStripe(t *testing.T) {
	f := newFixture(t, nil)
	stripe := func(k string) uint32 {
		h := fnv.New32a()
		h.Write([]byte(k))
		return h.Sum32() % uint32(len(f.ing.locks))
	}
	a := "nar/a"
	b := ""
	for i := 0; b == ""; i++ {
		if k := fmt.Sprintf("ls/%d.ls", i); stripe(k) == stripe(a) {
			b = k
		}
	}
	unlock := f.ing.lock(a, b)
	unlock()
	unlock = f.ing.lock(b)
	unlock()
}
