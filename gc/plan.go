package gc

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// planState is a Plan with what the sweep needs besides.
type planState struct {
	Plan
	// usedBefore refuses the deletion of a path used at or after it: the
	// cutoff, or the mirror retention's when paths die by it.
	usedBefore time.Time
}

// expiredPin is a pin that no longer keeps its path alive.
type expiredPin struct {
	id      int32
	name    string
	expires time.Time
}

// plan decides what a collection starting now removes.
func (c *Collector) plan(ctx context.Context) (*planState, error) {
	started := c.now()
	startMs := started.UnixMilli()
	pins, err := c.cat.Pins(ctx)
	if err != nil {
		return nil, fmt.Errorf("gc: listing pins: %w", err)
	}
	g, err := loadGraph(ctx, c.cat)
	if err != nil {
		return nil, err
	}

	var pinRoots []int32
	var expired []expiredPin
	for _, p := range pins {
		id := g.lookup(p.HashPart)
		if id < 0 || !g.isPath(id) {
			continue // removed since Pins returned it
		}
		if p.ExpiresAt.IsZero() || p.ExpiresAt.After(started) {
			pinRoots = append(pinRoots, id)
		} else {
			expired = append(expired, expiredPin{id: id, name: p.Name, expires: p.ExpiresAt})
		}
	}
	retCut := started.Add(-c.opt.Retention).Truncate(time.Millisecond).UnixMilli()
	mirrorCut := retCut
	if c.opt.MirrorRetention > 0 {
		mirrorCut = started.Add(-c.opt.MirrorRetention).Truncate(time.Millisecond).UnixMilli()
	}
	short, err := c.mirrorShortened(ctx, g, retCut, mirrorCut, startMs, pinRoots)
	if err != nil {
		return nil, err
	}
	rootsAt := func(cut int64) func(int32) bool {
		return func(id int32) bool {
			return (g.used[id] >= cut && (short == nil || !short[id])) || g.created[id] >= startMs
		}
	}

	m := newMarker(g)
	cut := retCut
	livePaths, liveBytes := m.mark(rootsAt(cut), pinRoots)
	var retLive []bool // live under the retention alone, when the quota cut deeper
	overQuota := false
	if c.opt.MaxSize > 0 && liveBytes > c.opt.MaxSize {
		retLive = slices.Clone(m.live)
		// The lowest cutoff (a last use, or the start) at which the live
		// data fits: live bytes only shrink as the cutoff rises.
		var cands []int64
		for id := int32(0); id < int32(g.len()); id++ {
			if u := g.used[id]; g.isPath(id) && u > retCut && u < startMs {
				cands = append(cands, u)
			}
		}
		slices.Sort(cands)
		cands = append(slices.Compact(cands), startMs)
		lo, hi := 0, len(cands)
		for lo < hi {
			mid := int(uint(lo+hi) >> 1)
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("gc: planning: %w", err)
			}
			if _, b := m.mark(rootsAt(cands[mid]), pinRoots); b <= c.opt.MaxSize {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		if lo == len(cands) {
			overQuota, cut = true, startMs
		} else {
			cut = cands[lo]
		}
		livePaths, liveBytes = m.mark(rootsAt(cut), pinRoots)
	}

	var total int64
	for _, s := range g.narSize {
		total += s
	}
	ps := &planState{
		Plan: Plan{
			Started:     started,
			Cutoff:      time.UnixMilli(cut).In(started.Location()),
			RemoveBytes: total - liveBytes,
			Paths:       g.published,
			LivePaths:   livePaths,
			LiveBytes:   liveBytes,
			OverQuota:   overQuota,
		},
	}
	ps.usedBefore = ps.Cutoff
	if short != nil && mirrorCut > cut {
		ps.usedBefore = time.UnixMilli(mirrorCut).In(started.Location())
	}
	r := &reasons{c: c, g: g, live: m.live, retLive: retLive, short: short, expired: expired, texts: make(map[reasonKey]string)}
	r.labelExpiredPins()
	order, cycle := deletionOrder(g, m.live)
	if cycle > 0 {
		c.opt.Logger.Warn("gc: dead paths that reference each other in a cycle are kept", "paths", cycle)
	}
	ps.Remove = make([]Doomed, 0, len(order))
	for _, id := range order {
		hashPart, storePath := g.name(id)
		ps.Remove = append(ps.Remove, Doomed{
			HashPart:  hashPart,
			StorePath: storePath,
			FileSize:  g.narSize[g.nar[id]],
			CreatedAt: time.UnixMilli(g.created[id]).In(started.Location()),
			LastUsed:  time.UnixMilli(g.used[id]).In(started.Location()),
			Reason:    r.of(id),
		})
	}
	c.opt.Logger.Debug("gc: planned", "paths", ps.Paths, "remove", len(ps.Remove), "remove_bytes", ps.RemoveBytes,
		"live_paths", ps.LivePaths, "live_bytes", ps.LiveBytes, "cutoff", ps.Cutoff, "over_quota", ps.OverQuota)
	return ps, nil
}

// reasonKey identifies a Reason text; many paths share one.
type reasonKey struct {
	kind byte // 'r' retention, 'q' quota, 'p' expired pin, 'm' mirror retention
	day  int64
	pin  int32
}

// reasons explains why dead paths die.
type reasons struct {
	c       *Collector
	g       *graph
	live    []bool
	retLive []bool // nil unless the quota cut deeper than the retention
	short   []bool // mirrorShortened
	expired []expiredPin
	pinOf   []int32 // by id: 1 + the index in expired of the pin that alone would keep it
	texts   map[reasonKey]string
}

// labelExpiredPins finds the dead paths that an expired pin would have
// kept: the pin's closure, minus what is live anyway.
func (r *reasons) labelExpiredPins() {
	if len(r.expired) == 0 {
		return
	}
	g := r.g
	r.pinOf = make([]int32, g.len())
	var stack []int32
	for i, e := range r.expired {
		label := int32(i + 1)
		stack = append(stack[:0], e.id)
		for len(stack) > 0 {
			id := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if !g.isPath(id) || r.live[id] || r.pinOf[id] != 0 {
				continue
			}
			r.pinOf[id] = label
			stack = append(stack, g.references(id)...)
		}
	}
}

// of returns the Reason of a dead path.
func (r *reasons) of(id int32) string {
	used := time.UnixMilli(r.g.used[id]).UTC()
	day := used.Unix() / 86400
	var k reasonKey
	switch {
	case r.retLive != nil && r.retLive[id]:
		k = reasonKey{kind: 'q', day: day}
	case r.pinOf != nil && r.pinOf[id] != 0:
		k = reasonKey{kind: 'p', day: day, pin: r.pinOf[id]}
	case r.short != nil && r.short[id]:
		k = reasonKey{kind: 'm', day: day}
	default:
		k = reasonKey{kind: 'r', day: day}
	}
	if s, ok := r.texts[k]; ok {
		return s
	}
	date := used.Format(time.DateOnly)
	var s string
	switch k.kind {
	case 'q':
		s = fmt.Sprintf("over quota: least recently used (last used %s)", date)
	case 'p':
		e := r.expired[k.pin-1]
		s = fmt.Sprintf("pin %s expired %s (unused since %s)", e.name, e.expires.UTC().Format(time.DateOnly), date)
	case 'm':
		s = fmt.Sprintf("mirrored, unused since %s (mirror retention %s); an upstream still has it", date, days(r.c.opt.MirrorRetention))
	default:
		s = fmt.Sprintf("unused since %s (retention %s)", date, days(r.c.opt.Retention))
	}
	r.texts[k] = s
	return s
}

// days formats a duration in days when it is a whole number of them.
func days(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

// deletionOrder orders the dead paths so that each comes before the paths
// it references (Kahn's algorithm on the dead subgraph), least recently
// used first among those free to go. It also returns how many dead paths
// a reference cycle leaves out.
func deletionOrder(g *graph, live []bool) ([]int32, int) {
	dead := func(id int32) bool { return g.isPath(id) && !live[id] }
	indeg := make([]int32, g.len())
	ndead := 0
	for id := int32(0); id < int32(g.len()); id++ {
		if !dead(id) {
			continue
		}
		ndead++
		for _, r := range g.references(id) {
			if dead(r) {
				indeg[r]++
			}
		}
	}
	h := &idHeap{g: g}
	for id := int32(0); id < int32(g.len()); id++ {
		if dead(id) && indeg[id] == 0 {
			h.ids = append(h.ids, id)
		}
	}
	h.init()
	order := make([]int32, 0, ndead)
	for len(h.ids) > 0 {
		id := h.pop()
		order = append(order, id)
		for _, r := range g.references(id) {
			if dead(r) {
				if indeg[r]--; indeg[r] == 0 {
					h.push(r)
				}
			}
		}
	}
	return order, ndead - len(order)
}

// idHeap is a min-heap of path ids by last use, then hash part.
type idHeap struct {
	g   *graph
	ids []int32
}

func (h *idHeap) less(i, j int) bool {
	a, b := h.ids[i], h.ids[j]
	if ua, ub := h.g.used[a], h.g.used[b]; ua != ub {
		return ua < ub
	}
	return h.g.hashLess(a, b)
}

func (h *idHeap) init() {
	for i := len(h.ids)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h *idHeap) push(id int32) {
	h.ids = append(h.ids, id)
	for i := len(h.ids) - 1; i > 0; {
		p := (i - 1) / 2
		if !h.less(i, p) {
			break
		}
		h.ids[i], h.ids[p] = h.ids[p], h.ids[i]
		i = p
	}
}

func (h *idHeap) pop() int32 {
	top := h.ids[0]
	last := len(h.ids) - 1
	h.ids[0] = h.ids[last]
	h.ids = h.ids[:last]
	h.down(0)
	return top
}

func (h *idHeap) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(h.ids) {
			return
		}
		m := l
		if r := l + 1; r < len(h.ids) && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			return
		}
		h.ids[i], h.ids[m] = h.ids[m], h.ids[i]
		i = m
	}
}
