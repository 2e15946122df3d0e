package gc

import (
	"context"
	"fmt"
	"hash/maphash"
	"strings"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/nixbase32"
)

// graph is the published paths in a compact form: an int32 id per hash
// part, times as Unix milliseconds, and references as a CSR adjacency
// list, with no string per edge. Ids of references to paths that are not
// published (an incomplete closure) are placeholders with nar < 0.
type graph struct {
	ids     map[[20]byte]int32 // nix32 hash parts, decoded
	oddIDs  map[string]int32   // hash parts that are not nix32 (never, in practice)
	nar     []int32            // by id: its NAR's id, -1 for a placeholder
	created []int64            // by id: CreatedAt
	used    []int64            // by id: LastUsed
	mirror  []bool             // by id: Mirrored
	nameOff []uint32           // by id: its entry in names
	nameLen []uint32
	names   []byte // entries: hash length (bit 7: full path follows), hash part, store path or its part after dir+"/"
	dir     string // the store directory of the first path

	refStart []uint32 // by id, len(ids)+1: its references are refs[refStart[id]:refStart[id+1]]
	refs     []int32

	narIDs  map[[2]uint64]int32 // NAR keys by a 128-bit hash (a collision only merges byte counts)
	narSize []int64             // by NAR id
	seeds   [2]maphash.Seed

	// While loading: references in walk order.
	walkIDs  []int32
	walkEnds []uint32
	walkRefs []int32

	published int
}

// loadGraph reads every published path from the catalog.
func loadGraph(ctx context.Context, cat catalog.Catalog) (*graph, error) {
	g := &graph{
		ids:    make(map[[20]byte]int32),
		oddIDs: make(map[string]int32),
		narIDs: make(map[[2]uint64]int32),
		seeds:  [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
	}
	var addErr error
	err := cat.WalkGraph(ctx, func(n catalog.GraphNode) error {
		if addErr = g.add(n); addErr != nil {
			return addErr
		}
		return ctx.Err()
	})
	if addErr != nil {
		return nil, addErr
	}
	if err != nil {
		return nil, fmt.Errorf("gc: walking the published paths: %w", err)
	}
	g.buildCSR()
	return g, nil
}

// len returns the number of ids, placeholders included.
func (g *graph) len() int { return len(g.nar) }

// isPath reports whether id is a published path.
func (g *graph) isPath(id int32) bool { return g.nar[id] >= 0 }

// lookup returns the id of a hash part, or -1.
func (g *graph) lookup(hashPart string) int32 {
	var k [20]byte
	if n, err := nixbase32.DecodeStringTo(k[:], hashPart); err == nil && n == len(k) && len(hashPart) == 32 {
		if id, ok := g.ids[k]; ok {
			return id
		}
		return -1
	}
	if id, ok := g.oddIDs[hashPart]; ok {
		return id
	}
	return -1
}

// id returns the id of a hash part, making a placeholder for a new one.
func (g *graph) id(hashPart string) int32 {
	var k [20]byte
	nix32 := false
	if n, err := nixbase32.DecodeStringTo(k[:], hashPart); err == nil && n == len(k) && len(hashPart) == 32 {
		nix32 = true
		if id, ok := g.ids[k]; ok {
			return id
		}
	} else if id, ok := g.oddIDs[hashPart]; ok {
		return id
	}
	id := int32(len(g.nar))
	if nix32 {
		g.ids[k] = id
	} else {
		g.oddIDs[strings.Clone(hashPart)] = id
	}
	g.nar = append(g.nar, -1)
	g.created = append(g.created, 0)
	g.used = append(g.used, 0)
	g.mirror = append(g.mirror, false)
	g.nameOff = append(g.nameOff, 0)
	g.nameLen = append(g.nameLen, 0)
	return id
}

// add records one published path.
func (g *graph) add(n catalog.GraphNode) error {
	if len(n.HashPart) == 0 || len(n.HashPart) > 127 {
		return fmt.Errorf("gc: published path %q has a hash part of %d bytes", n.StorePath, len(n.HashPart))
	}
	if len(g.nar) >= 1<<31-1 {
		return fmt.Errorf("gc: more than %d paths", 1<<31-1)
	}
	id := g.id(n.HashPart)
	if g.isPath(id) {
		return fmt.Errorf("gc: the catalog listed %s twice", n.StorePath)
	}
	g.nar[id] = g.narID(n.NARKey, n.FileSize)
	g.created[id] = n.CreatedAt.UnixMilli()
	g.used[id] = n.LastUsed.UnixMilli()
	g.mirror[id] = n.Mirrored
	g.addName(id, n.HashPart, n.StorePath)
	g.published++

	g.walkIDs = append(g.walkIDs, id)
	for _, r := range n.References {
		if rid := g.id(r); rid != id {
			g.walkRefs = append(g.walkRefs, rid)
		}
	}
	g.walkEnds = append(g.walkEnds, uint32(len(g.walkRefs)))
	return nil
}

// addName stores the hash part and store path of id.
func (g *graph) addName(id int32, hashPart, storePath string) {
	if g.dir == "" {
		if i := strings.LastIndexByte(storePath, '/'); i > 0 {
			g.dir = storePath[:i]
		}
	}
	flag := byte(0x80)
	rest := storePath
	if g.dir != "" && len(storePath) > len(g.dir)+1+len(hashPart) && storePath[len(g.dir)] == '/' &&
		strings.HasPrefix(storePath, g.dir) && storePath[len(g.dir)+1:len(g.dir)+1+len(hashPart)] == hashPart {
		flag, rest = 0, storePath[len(g.dir)+1+len(hashPart):]
	}
	g.nameOff[id] = uint32(len(g.names))
	g.names = append(g.names, flag|byte(len(hashPart)))
	g.names = append(g.names, hashPart...)
	g.names = append(g.names, rest...)
	g.nameLen[id] = uint32(len(g.names)) - g.nameOff[id]
}

// name returns the hash part and store path of a published id.
func (g *graph) name(id int32) (hashPart, storePath string) {
	e := g.names[g.nameOff[id] : g.nameOff[id]+g.nameLen[id]]
	n := int(e[0] & 0x7f)
	if e[0]&0x80 != 0 {
		return string(e[1 : 1+n]), string(e[1+n:])
	}
	sp := g.dir + "/" + string(e[1:])
	return sp[len(g.dir)+1 : len(g.dir)+1+n], sp
}

// hashLess orders published ids by hash part.
func (g *graph) hashLess(a, b int32) bool {
	ea := g.names[g.nameOff[a]:]
	eb := g.names[g.nameOff[b]:]
	return string(ea[1:1+ea[0]&0x7f]) < string(eb[1:1+eb[0]&0x7f])
}

// narID interns a NAR key.
func (g *graph) narID(key string, size int64) int32 {
	k := [2]uint64{maphash.String(g.seeds[0], key), maphash.String(g.seeds[1], key)}
	id, ok := g.narIDs[k]
	if !ok {
		id = int32(len(g.narSize))
		g.narIDs[k] = id
		g.narSize = append(g.narSize, 0)
	}
	g.narSize[id] = max(g.narSize[id], size)
	return id
}

// buildCSR turns the references gathered in walk order into the CSR
// arrays indexed by id.
func (g *graph) buildCSR() {
	n := g.len()
	g.refStart = make([]uint32, n+1)
	start := uint32(0)
	for i, id := range g.walkIDs {
		g.refStart[id+1] = g.walkEnds[i] - start
		start = g.walkEnds[i]
	}
	for i := 0; i < n; i++ {
		g.refStart[i+1] += g.refStart[i]
	}
	g.refs = make([]int32, len(g.walkRefs))
	start = 0
	for i, id := range g.walkIDs {
		copy(g.refs[g.refStart[id]:], g.walkRefs[start:g.walkEnds[i]])
		start = g.walkEnds[i]
	}
	g.walkIDs, g.walkEnds, g.walkRefs = nil, nil, nil
}

// references returns the ids id references, itself excluded.
func (g *graph) references(id int32) []int32 {
	return g.refs[g.refStart[id]:g.refStart[id+1]]
}

// marker computes the set of paths reachable from roots, reusing its
// buffers between calls.
type marker struct {
	g     *graph
	live  []bool
	stack []int32
	seen  []uint32 // by NAR id: the generation that counted it
	gen   uint32
}

func newMarker(g *graph) *marker {
	return &marker{g: g, live: make([]bool, g.len()), seen: make([]uint32, len(g.narSize))}
}

// mark sets live to the closure of the published ids for which root is
// true and of extra, and returns its path count and distinct NAR bytes.
func (m *marker) mark(root func(id int32) bool, extra []int32) (paths int, bytes int64) {
	clear(m.live)
	g := m.g
	stack := m.stack[:0]
	push := func(id int32) {
		if !m.live[id] && g.isPath(id) {
			m.live[id] = true
			stack = append(stack, id)
		}
	}
	for _, id := range extra {
		push(id)
	}
	for id := int32(0); id < int32(g.len()); id++ {
		if g.isPath(id) && root(id) {
			push(id)
		}
	}
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, r := range g.references(id) {
			push(r)
		}
	}
	m.stack = stack
	m.gen++
	for id, l := range m.live {
		if !l {
			continue
		}
		paths++
		if nid := g.nar[id]; m.seen[nid] != m.gen {
			m.seen[nid] = m.gen
			bytes += g.narSize[nid]
		}
	}
	return paths, bytes
}
