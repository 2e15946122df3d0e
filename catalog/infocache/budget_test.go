package infocache

import (
	"fmt"
	"testing"

	"github.com/nix-cached/cached/catalog/catalogtest"
)

// cycleHashes returns n absent hash parts and the budget that holds
// exactly that many known misses.
func cycleHashes(n int) ([]string, int64) {
	hashes := make([]string, n)
	for i := range hashes {
		hashes[i] = catalogtest.FakeHash(fmt.Sprintf("cycle-%d", i), 32)
	}
	return hashes, int64(n) * entry{missing: true}.size(hashes[0])
}

// A set of paths that fits the budget is served from memory once seen,
// even when asked for over and over in the same order (as substituters
// of one closure do): the whole budget holds entries, not half of it.
func TestWholeBudgetHoldsEntries(t *testing.T) {
	hashes, budget := cycleHashes(40)
	c, _ := twoProcesses(t, Options{MaxBytes: budget})
	askRounds(t, c, hashes, 1)
	before := c.CacheStats()
	askRounds(t, c, hashes, 3)
	s := c.CacheStats()
	if s.Misses != before.Misses || s.Hits-before.Hits != 3*int64(len(hashes)) {
		t.Errorf("asking %d entries that fit again: %d hits and %d misses, want %d hits", len(hashes),
			s.Hits-before.Hits, s.Misses-before.Misses, 3*len(hashes))
	}
	if s.Bytes > budget {
		t.Errorf("entries take %d bytes, over the %d allowed", s.Bytes, budget)
	}
}

// A set of paths larger than the budget, asked for over and over in the
// same order, still finds some in memory: least-recently-used eviction
// would drop each entry just before it is asked for again.
func TestCycleLargerThanBudget(t *testing.T) {
	hashes, budget := cycleHashes(60)
	c, _ := twoProcesses(t, Options{MaxBytes: budget * 2 / 3})
	askRounds(t, c, hashes, 1)
	before := c.CacheStats()
	askRounds(t, c, hashes, 5)
	s := c.CacheStats()
	if s.Hits == before.Hits {
		t.Errorf("no hits in 5 rounds of %d entries with room for 40 (%d misses)", len(hashes), s.Misses-before.Misses)
	}
	if s.Bytes > budget*2/3 {
		t.Errorf("entries take %d bytes, over the %d allowed", s.Bytes, budget*2/3)
	}
}

// askRounds asks c for the narinfo of every hash, in order, rounds times.
func askRounds(t *testing.T, c *Catalog, hashes []string, rounds int) {
	t.Helper()
	for range rounds {
		for _, h := range hashes {
			narInfo(t, c, h)
		}
	}
}
