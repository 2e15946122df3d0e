package synth_test

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/catalog/sqlite"
	"github.com/nix-cached/cached/catalog/synth"
	"github.com/nix-cached/cached/narinfo"
)

// TestFillSQLite loads rows into a real catalog and reads them back
// through it: every narinfo parses and names its path, the graph has
// every path with the references Generate chose, and last uses fall in
// the spread.
func TestFillSQLite(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "cached.db")
	c, err := sqlite.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	now := time.UnixMilli(1_700_000_000_000)
	o := synth.Options{Paths: 500, Rand: rand.New(rand.NewPCG(1, 2)), Now: now, Spread: time.Hour}
	res, err := synth.FillSQLite(ctx, db, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Hashes) != o.Paths || len(res.Keys) != o.Paths {
		t.Fatalf("got %d hashes and %d keys, want %d", len(res.Hashes), len(res.Keys), o.Paths)
	}
	want := map[string][]string{}
	o.Rand = rand.New(rand.NewPCG(1, 2))
	if err := synth.Generate(o, func(r synth.Row) error {
		want[r.Hash] = r.Refs
		if r.At.After(now) || r.At.Before(now.Add(-time.Hour)) {
			t.Errorf("%s: time %v outside the spread", r.Hash, r.At)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for i, h := range res.Hashes {
		text, err := c.NarInfo(ctx, h)
		if err != nil {
			t.Fatalf("NarInfo(%s): %v", h, err)
		}
		ni, err := narinfo.Parse([]byte(text))
		if err != nil {
			t.Fatalf("narinfo of %s does not parse: %v\n%s", h, err, text)
		}
		if ni.URL != res.Keys[i] || len(ni.References) != len(want[h]) {
			t.Fatalf("narinfo of %s: URL %s, %d references; want %s, %d", h, ni.URL, len(ni.References), res.Keys[i], len(want[h]))
		}
	}
	nodes := 0
	err = c.WalkGraph(ctx, func(g catalog.GraphNode) error {
		nodes++
		if len(g.References) != len(want[g.HashPart]) {
			t.Errorf("%s: %d references in the graph, want %d", g.HashPart, len(g.References), len(want[g.HashPart]))
		}
		return nil
	})
	if err != nil || nodes != o.Paths {
		t.Fatalf("WalkGraph: %d nodes, %v; want %d", nodes, err, o.Paths)
	}
}
