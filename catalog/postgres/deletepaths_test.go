package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/catalog/sqlite"
)

// TestDeletePathsLikeSQLite builds random catalogs (references, shared NARs
// and derivers, pins, uses, uploads under way) in this catalog and in the
// SQLite one, deletes random batches from both, and compares every result
// and the state left: DeletePaths judges a whole batch from one read, and
// must still answer as one deletion after the other would.
func TestDeletePathsLikeSQLite(t *testing.T) {
	ctx := context.Background()
	pg := openT(t)
	lite, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "oracle.db"))
	must(t, "sqlite.Open", err)
	t.Cleanup(func() { lite.Close() })
	seen := map[string]int{}
	defer func() { t.Logf("outcomes: %v", seen) }()
	for scenario := range 12 {
		r := rand.New(rand.NewPCG(uint64(scenario), 99))
		s := newScenario(r, fmt.Sprintf("s%d-", scenario))
		for _, c := range []catalog.Catalog{pg, lite} {
			s.build(t, c)
		}
		for batch := range 3 {
			order, cond := s.batch(r)
			want, err := lite.DeletePaths(ctx, order, cond)
			must(t, "sqlite DeletePaths", err)
			got, err := pg.DeletePaths(ctx, order, cond)
			must(t, "DeletePaths", err)
			where := fmt.Sprintf("scenario %d, batch %d", scenario, batch)
			compareResults(t, where, order, got, want)
			for _, r := range want {
				switch {
				case r.Err != nil:
					seen[errorsKind(r.Err)]++
				case r.NAR != nil:
					seen["deleted with its NAR"]++
				default:
					seen["deleted, NAR kept"]++
				}
				if r.OrphanLog != "" {
					seen["orphan log"]++
				}
			}
			s.compareState(t, where, pg, lite)
		}
	}
}

// scenario is a random catalog's contents.
type scenario struct {
	prefix string
	nars   []catalog.NAR
	paths  []catalog.Path
	pins   []catalog.Pin
	uses   map[string]time.Time
	begun  []catalog.NAR // uploaded again, not yet recorded
}

// newScenario draws 50 paths in dependency order.
func newScenario(r *rand.Rand, prefix string) *scenario {
	s := &scenario{prefix: prefix, uses: map[string]time.Time{}}
	drvs := []string{"", fakeHash(prefix+"drv-a", 32) + "-a.drv", fakeHash(prefix+"drv-b", 32) + "-b.drv"}
	for i := range 50 {
		seed := fmt.Sprintf("%sp%d", prefix, i)
		created := t0.Add(time.Duration(r.IntN(4)) * time.Hour)
		n := newNAR(seed, created)
		if i > 0 && r.IntN(5) == 0 { // same contents as an earlier path
			n = s.nars[r.IntN(len(s.nars))]
		} else {
			s.nars = append(s.nars, n)
		}
		var refs []string
		for range r.IntN(4) {
			if i > 0 {
				refs = append(refs, fmt.Sprintf("%sp%d", prefix, r.IntN(i)))
			}
		}
		if i > 0 && r.IntN(2) == 0 { // a hub referenced by many, such as glibc
			refs = append(refs, prefix+"p0")
		}
		if r.IntN(3) == 0 {
			refs = append(refs, seed)
		}
		p := newPath(seed, n, refs...)
		p.CreatedAt = created
		if r.IntN(2) == 0 {
			p.Deriver = drvs[r.IntN(len(drvs))]
		} else {
			p.Deriver = fakeHash(seed, 32) + "-own.drv"
		}
		s.paths = append(s.paths, p)
		if r.IntN(3) == 0 {
			s.uses[p.HashPart] = t0.Add(time.Duration(r.IntN(6)) * time.Hour)
		}
		if r.IntN(8) == 0 {
			pin := catalog.Pin{Name: fmt.Sprintf("pin-%d", r.IntN(3)), HashPart: p.HashPart, CreatedAt: t0}
			if r.IntN(2) == 0 {
				pin.ExpiresAt = t0.Add(time.Duration(r.IntN(4)) * time.Hour)
			}
			s.pins = append(s.pins, pin)
		}
	}
	for _, n := range s.nars {
		if r.IntN(10) == 0 {
			s.begun = append(s.begun, n)
		}
	}
	return s
}

// build records the scenario in c.
func (s *scenario) build(t *testing.T, c catalog.Catalog) {
	ctx := context.Background()
	for _, n := range s.nars {
		must(t, "PutNAR", c.PutNAR(ctx, n))
	}
	for _, p := range s.paths {
		must(t, "Publish", c.Publish(ctx, p, catalog.PublishOptions{}))
	}
	must(t, "RecordUse", c.RecordUse(ctx, s.uses, nil))
	for _, p := range s.pins {
		must(t, "AddPin", c.AddPin(ctx, p, 5))
	}
	for _, n := range s.begun {
		must(t, "BeginNAR", c.BeginNAR(ctx, n.Key, n.ListingKey, n.CreatedAt))
	}
}

// batch draws an order of deletion (mostly referrers first, with absent
// and repeated paths) and a condition.
func (s *scenario) batch(r *rand.Rand) ([]string, catalog.DeleteCondition) {
	var order []string
	for i := len(s.paths) - 1; i >= 0; i-- {
		if r.IntN(3) > 0 {
			order = append(order, s.paths[i].HashPart)
		}
	}
	for range 3 {
		i, j := r.IntN(len(order)), r.IntN(len(order))
		order[i], order[j] = order[j], order[i]
	}
	order = append(order, hashPart(s.prefix+"absent"), order[r.IntN(len(order))])
	conds := []catalog.DeleteCondition{
		{},
		{IgnorePins: true},
		{CreatedBefore: t0.Add(2 * time.Hour)},
		{CreatedBefore: t0.Add(5 * time.Hour), UsedBefore: t0.Add(3 * time.Hour)},
		{CreatedBefore: t0.Add(3 * time.Hour), UsedBefore: t0.Add(5 * time.Hour), IgnorePins: true},
	}
	return order, conds[r.IntN(len(conds))]
}

// compareResults fails the test where got differs from want.
func compareResults(t *testing.T, where string, order []string, got, want []catalog.DeleteResult) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d results, want %d", where, len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if reason(g.Err) != reason(w.Err) {
			t.Errorf("%s: %s: error %v, want %v", where, order[i], g.Err, w.Err)
			continue
		}
		if w.Err != nil {
			continue
		}
		gk, wk := "", ""
		if g.NAR != nil {
			gk = g.NAR.Key
		}
		if w.NAR != nil {
			wk = w.NAR.Key
		}
		if g.Path.HashPart != w.Path.HashPart || gk != wk || g.OrphanLog != w.OrphanLog {
			t.Errorf("%s: %s: deleted %s with NAR %q and log %q, want %s, %q, %q", where, order[i],
				g.Path.HashPart, gk, g.OrphanLog, w.Path.HashPart, wk, w.OrphanLog)
		}
	}
}

// reason is an error's message from its catalog sentinel on: the
// refusal and what it names, the same for both implementations.
func reason(err error) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	for _, s := range []error{catalog.ErrNotFound, catalog.ErrReferenced, catalog.ErrPinned, catalog.ErrKept} {
		if i := strings.Index(msg, s.Error()); errors.Is(err, s) && i >= 0 {
			return msg[i:]
		}
	}
	return msg
}

// compareState fails the test unless both catalogs hold the same paths
// of the scenario, NARs being deleted and pins.
func (s *scenario) compareState(t *testing.T, where string, got, want catalog.Catalog) {
	t.Helper()
	ctx := context.Background()
	for _, p := range s.paths {
		_, gerr := got.Path(ctx, p.HashPart)
		_, werr := want.Path(ctx, p.HashPart)
		if (gerr == nil) != (werr == nil) {
			t.Errorf("%s: path %s: %v, want %v", where, p.HashPart, gerr, werr)
		}
	}
	keys := func(c catalog.Catalog) []string {
		nars, err := c.DeletingNARs(ctx)
		must(t, "DeletingNARs", err)
		var ks []string
		for _, n := range nars {
			ks = append(ks, n.Key)
		}
		slices.Sort(ks)
		return ks
	}
	if g, w := keys(got), keys(want); !slices.Equal(g, w) {
		t.Errorf("%s: DeletingNARs %q, want %q", where, g, w)
	}
	pins := func(c catalog.Catalog) string {
		ps, err := c.Pins(ctx)
		must(t, "Pins", err)
		var b strings.Builder
		for _, p := range ps {
			fmt.Fprintf(&b, "%s→%s current %v; ", p.Name, p.HashPart, p.Current)
		}
		return b.String()
	}
	if g, w := pins(got), pins(want); g != w {
		t.Errorf("%s: Pins %s, want %s", where, g, w)
	}
}

// errorsKind names the refusal err is.
func errorsKind(err error) string {
	for _, s := range []error{catalog.ErrNotFound, catalog.ErrReferenced, catalog.ErrPinned, catalog.ErrKept} {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	return "other"
}
