package gc

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/ingest"
)

// TestScrub damages two NARs of a closure lib <- bin <- app <- top: the
// scrub checks every NAR once, quarantines the two (lib's hides the whole
// closure, as everything references it), records its checks, and Verify
// reports the quarantined paths.
func TestScrub(t *testing.T) {
	for _, mode := range []string{ingest.ModeKeep, ingest.ModeZstd} {
		t.Run(mode, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, mode)
			ps := f.closure()
			other := f.push(storePath("other"), ingest.CompXZ, []byte("other contents"))
			f.put(ps["app"].NARKey, flip(f.read(ps["app"].NARKey)))
			f.del(ps["lib"].NARKey)
			var damaged []string
			s, err := NewScrubber(f.cat, f.store, ScrubOptions{Rate: 1 << 30, Now: f.clock.Now,
				Damaged: func(key string, _ int) { damaged = append(damaged, key) }})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.pass(ctx); !errors.Is(err, errScrubbedUp) {
				t.Fatalf("pass: %v, want errScrubbedUp", err)
			}
			if st := s.Stats(); st.NARs != 5 || st.Damaged != 2 {
				t.Errorf("stats %+v, want 5 NARs checked, 2 damaged", st)
			}
			slices.Sort(damaged)
			if want := []string{ps["app"].NARKey, ps["lib"].NARKey}; !slices.Equal(damaged, sortedSet(want)) {
				t.Errorf("quarantined %v, want %v", damaged, want)
			}
			for name, p := range ps {
				if _, err := f.cat.NarInfo(ctx, p.HashPart); !errors.Is(err, catalog.ErrNotFound) {
					t.Errorf("%s is still served: %v", name, err)
				}
			}
			if _, err := f.cat.NarInfo(ctx, other.HashPart); err != nil {
				t.Errorf("the sound path is not served: %v", err)
			}
			q, err := f.cat.Quarantined(ctx)
			if err != nil {
				t.Fatal(err)
			}
			reasons := map[string]string{}
			for _, e := range q {
				if e.NARKey == ps["lib"].NARKey {
					reasons[e.StorePath] = e.Reason
				}
			}
			if len(reasons) != 4 || !strings.Contains(reasons[ps["top"].StorePath], "is missing") {
				t.Errorf("paths hidden by lib's NAR: %v", reasons)
			}
			// Every NAR was checked now: the next pass has nothing due.
			queue, err := f.cat.ScrubQueue(ctx, 10)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range queue {
				if !n.Scrubbed.Equal(f.clock.Now().Truncate(1e6)) {
					t.Errorf("%s scrubbed at %v, want %v", n.Key, n.Scrubbed, f.clock.Now())
				}
			}
			rep := verify(t, f, false)
			found := 0
			for _, p := range rep.Problems {
				if strings.Contains(p.What, "quarantined: not served") {
					found++
				}
			}
			// lib and bin hidden by lib's NAR; app and top by both.
			if found != 6 {
				t.Errorf("verify reports %d quarantined paths, want 6: %v", found, rep.Problems)
			}
		})
	}
}
