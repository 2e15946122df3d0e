package gc

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/ingest"
	"github.com/nix-cached/cached/internal/nixtest"
	"github.com/nix-cached/cached/narinfo"
)

// TestCollectNixClosure collects a closure that Nix built and wrote with
// `nix copy --to file://`, pushed file by file as a client would: the real
// references (a self-reference included) keep it whole while its top is
// used, and it goes whole when it is not. It runs with every installed
// Nix client.
func TestCollectNixClosure(t *testing.T) { nixtest.Each(t, testCollectNixClosure) }

// testCollectNixClosure is TestCollectNixClosure with one Nix client.
func testCollectNixClosure(t *testing.T, nix *nixtest.Nix) {
	ctx := context.Background()
	c := nix.New(t)
	n := nixtest.Nonce()
	d := nixtest.Derivation
	out := c.Build(`let
  leaf = ` + d("leaf-"+n, `echo `+n+` > $out`) + `;
  mid = ` + d("mid-"+n, `mkdir $out; ln -s ${leaf} $out/leaf; echo $out > $out/self`) + `;
in [ (` + d("top-"+n, `mkdir $out; ln -s ${mid} $out/mid`) + `) (` + d("other-"+n, `echo other > $out`) + `) ]`)
	if len(out) != 2 {
		t.Fatalf("built %v", out)
	}
	top, other := out[0], out[1]
	closure := c.Closure(top, other)
	cache := t.TempDir()
	c.Run("nix", "copy", "--to", "file://"+cache+"?compression=xz&write-nar-listing=1", top, other)

	f := newFixture(t, ingest.ModeZstd)
	for _, p := range closure { // dependencies first
		hash := filepath.Base(p)[:32]
		raw, err := os.ReadFile(filepath.Join(cache, hash+".narinfo"))
		if err != nil {
			t.Fatal(err)
		}
		ni, err := narinfo.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		file, err := os.ReadFile(filepath.Join(cache, ni.URL))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.ing.NAR(ctx, strings.TrimPrefix(ni.URL, "nar/"), bytes.NewReader(file), int64(len(file))); err != nil {
			t.Fatalf("NAR of %s: %v", p, err)
		}
		if _, err := f.ing.NarInfo(ctx, hash, raw); err != nil {
			t.Fatalf("narinfo of %s: %v", p, err)
		}
	}
	f.clock.Advance(400 * day)
	if err := f.cat.RecordUse(ctx, map[string]time.Time{filepath.Base(top)[:32]: f.clock.Now()}, nil); err != nil {
		t.Fatal(err)
	}
	col := f.collector(Options{})
	res := run(t, col)
	if len(res.Remove) != 1 || res.Remove[0].StorePath != other {
		t.Fatalf("removed %v, want %s alone", names(res.Remove), other)
	}
	f.requireClean()

	f.clock.Advance(400 * day)
	res = run(t, col)
	var removed []string
	for _, d := range res.Remove {
		removed = append(removed, d.StorePath)
	}
	want := slices.DeleteFunc(slices.Clone(closure), func(p string) bool { return p == other })
	slices.Reverse(want) // referrers first
	if !slices.Equal(removed, want) {
		t.Errorf("removed %v, want %v", removed, want)
	}
	if err := f.cat.WalkPaths(ctx, func(p catalog.Path) error {
		t.Errorf("%s is still published", p.StorePath)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	f.requireClean()
}
