package gc

import (
	"context"
	"fmt"
	"sync"
)

// mirrorChecks is how many upstream lookups mirrorShortened makes at once.
const mirrorChecks = 8

// mirrorShortened returns, by id, the mirrored paths that the shorter
// mirror retention leaves unprotected: used within the retention (cut is
// its cutoff) but not within the mirror retention (before mirrorCut),
// created before the
// collection started, not in the closure of a pin or of a path that stays
// anyway, and still served by an upstream (asked now; a path no upstream
// confirms keeps the full retention). nil when the mirror retention does
// not apply.
func (c *Collector) mirrorShortened(ctx context.Context, g *graph, cut, mirrorCut, startMs int64, pinRoots []int32) ([]bool, error) {
	if mirrorCut <= cut || c.opt.UpstreamHas == nil {
		return nil, nil
	}
	short := make([]bool, g.len()) // the candidates first
	any := false
	for id := int32(0); id < int32(g.len()); id++ {
		if g.isPath(id) && g.mirror[id] && g.used[id] >= cut && g.used[id] < mirrorCut && g.created[id] < startMs {
			short[id], any = true, true
		}
	}
	if !any {
		return nil, nil
	}
	// Only those outside what stays anyway are worth asking about.
	m := newMarker(g)
	m.mark(func(id int32) bool { return (g.used[id] >= cut && !short[id]) || g.created[id] >= startMs }, pinRoots)
	var cands []int32
	for id, s := range short {
		if s && !m.live[id] {
			cands = append(cands, int32(id))
		}
		short[id] = false
	}
	next := make(chan int32)
	var wg sync.WaitGroup
	for range min(mirrorChecks, len(cands)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range next {
				hashPart, _ := g.name(id)
				short[id] = c.opt.UpstreamHas(ctx, hashPart) // each id is written by one goroutine
			}
		}()
	}
	for _, id := range cands {
		if ctx.Err() != nil {
			break
		}
		next <- id
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("gc: asking upstreams about mirrored paths: %w", err)
	}
	n := 0
	for _, id := range cands {
		if short[id] {
			n++
		}
	}
	c.opt.Logger.Info("gc: mirrored paths past the mirror retention", "checked", len(cands), "upstream_has", n)
	return short, nil
}
