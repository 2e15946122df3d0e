package catalogtest

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog"
)

// rest is the Within of the last ByLastUse bucket: no upper bound.
const rest = time.Duration(math.MaxInt64)

// checkStats fails the test unless Stats(now, ages) returns want.
func checkStats(t *testing.T, c catalog.Catalog, step string, now time.Time, ages []time.Duration, want catalog.Stats) {
	t.Helper()
	got, err := c.Stats(context.Background(), now, ages)
	if err != nil {
		t.Fatalf("%s: Stats: %v", step, err)
	}
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Errorf("%s: Stats =\n%+v\nwant\n%+v", step, got, want)
	}
}

func testStats(t *testing.T, c catalog.Catalog) {
	ctx := context.Background()
	now := at(30 * 24 * time.Hour)
	ages := []time.Duration{time.Hour, 24 * time.Hour, 7 * 24 * time.Hour}
	checkStats(t, c, "empty", now, ages, catalog.Stats{ByLastUse: []catalog.AgeBucket{
		{Within: time.Hour}, {Within: 24 * time.Hour}, {Within: 7 * 24 * time.Hour}, {Within: rest}}})

	// Each path's NAR is 1000 bytes times its number, published at t0 and
	// last used as given.
	uses := map[string]time.Time{}
	for i, used := range []time.Time{
		now.Add(time.Minute),                        // 0: in the future: the first bucket
		now.Add(-time.Hour),                         // 1: exactly 1h ago: within 1h
		now.Add(-time.Hour - time.Millisecond),      // 2: within 24h
		now.Add(-24 * time.Hour),                    // 3: within 24h
		now.Add(-7 * 24 * time.Hour),                // 4: within 7d
		now.Add(-7*24*time.Hour - time.Millisecond), // 5: older
		at(0), // 6: never used since its publication: older
	} {
		seed := fmt.Sprintf("stats-%d", i)
		n := newNAR(seed, at(0))
		n.FileSize = int64(i+1) * 1000
		publish(t, c, n, newPath(seed, n, "k:1"))
		uses[HashPart(seed)] = used
	}
	// Two more paths share one NAR of 50 bytes, used 2 days ago.
	shared := newNAR("stats-shared", at(0))
	shared.FileSize = 50
	for _, seed := range []string{"stats-shared-a", "stats-shared-b"} {
		publish(t, c, shared, newPath(seed, shared, "k:1"))
		uses[HashPart(seed)] = now.Add(-48 * time.Hour)
	}
	if err := c.RecordUse(ctx, uses, nil); err != nil {
		t.Fatalf("RecordUse: %v", err)
	}
	// Unclaimed: one ready NAR of 7 bytes, one pending upload; a NAR being
	// deleted counts nowhere.
	free := newNAR("stats-free", at(0))
	free.FileSize = 7
	putNAR(t, c, free)
	pending := newNAR("stats-pending", at(0))
	beginNAR(t, c, pending.Key, pending.ListingKey, at(0))
	doomed := newNAR("stats-doomed", at(0))
	doomed.FileSize = 1 << 30
	putNAR(t, c, doomed)
	markDeleting(t, c, doomed.Key, at(time.Hour), true)
	addPin(t, c, "rel", "stats-0", at(0), time.Time{}, 1)
	addPin(t, c, "rel", "stats-1", at(0), time.Time{}, 1)
	addPin(t, c, "other", "stats-1", at(0), time.Time{}, 0)

	want := catalog.Stats{
		Paths: 9, NARs: 8, Bytes: 28000 + 50, UnclaimedNARs: 2, UnclaimedBytes: 7, Pins: 3,
		ByLastUse: []catalog.AgeBucket{
			{Within: time.Hour, Paths: 2, Bytes: 1000 + 2000},
			{Within: 24 * time.Hour, Paths: 2, Bytes: 3000 + 4000},
			{Within: 7 * 24 * time.Hour, Paths: 3, Bytes: 5000 + 50 + 50},
			{Within: rest, Paths: 2, Bytes: 6000 + 7000},
		},
	}
	checkStats(t, c, "filled", now, ages, want)
	checkStats(t, c, "one bucket", now, nil, catalog.Stats{
		Paths: 9, NARs: 8, Bytes: 28050, UnclaimedNARs: 2, UnclaimedBytes: 7, Pins: 3,
		ByLastUse: []catalog.AgeBucket{{Within: rest, Paths: 9, Bytes: 28000 + 100}},
	})
	for _, bad := range [][]time.Duration{
		{24 * time.Hour, time.Hour},
		{time.Hour, time.Hour},
		{-time.Hour},
	} {
		if _, err := c.Stats(ctx, now, bad); err == nil {
			t.Errorf("Stats with ages %v succeeded, want an error", bad)
		}
	}
}
