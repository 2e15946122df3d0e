package gc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/ingest"
	"github.com/nix-cached/cached/storage"
)

// closure pushes four paths, one per upload compression, dependencies
// first: lib; bin → lib; app → bin, lib, itself; top → app.
func (f *fixture) closure() map[string]catalog.Path {
	f.t.Helper()
	lib, bin, app, top := storePath("lib"), storePath("bin"), storePath("app"), storePath("top")
	return map[string]catalog.Path{
		"lib": f.push(lib, ingest.CompNone, []byte("lib contents")),
		"bin": f.push(bin, ingest.CompXZ, []byte("bin contents"), lib),
		"app": f.push(app, ingest.CompGzip, []byte("app contents"), app, bin, lib),
		"top": f.push(top, ingest.CompZstd, []byte("top contents"), app),
	}
}

func verify(t *testing.T, f *fixture, contents bool) VerifyReport {
	t.Helper()
	rep, err := Verify(context.Background(), f.cat, f.store, VerifyOptions{Contents: contents})
	if err != nil {
		t.Fatalf("Verify(contents=%v): %v", contents, err)
	}
	return rep
}

func TestVerifyClean(t *testing.T) {
	for _, mode := range []string{ingest.ModeKeep, ingest.ModeZstd} {
		for _, contents := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/contents=%v", mode, contents), func(t *testing.T) {
				f := newFixture(t, mode)
				paths := f.closure()
				var bytes int64
				for _, p := range paths {
					bytes += f.nar(p).FileSize
				}
				rep := verify(t, f, contents)
				want := VerifyReport{Paths: 4, NARs: 4, Bytes: bytes}
				if rep.Paths != want.Paths || rep.NARs != want.NARs || rep.Bytes != want.Bytes || len(rep.Problems) != 0 {
					t.Errorf("report %+v, want %+v", rep, want)
				}
			})
		}
	}
}

func TestVerifyEmpty(t *testing.T) {
	f := newFixture(t, ingest.ModeZstd)
	if rep := verify(t, f, true); rep.Paths != 0 || rep.NARs != 0 || rep.Bytes != 0 || len(rep.Problems) != 0 {
		t.Errorf("empty cache: %+v", rep)
	}
}

// flip returns data with the byte at the middle changed.
func flip(data []byte) []byte {
	out := slices.Clone(data)
	out[len(out)/2] ^= 0x55
	return out
}

func TestVerifyDamage(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// damage breaks the cache and returns the store paths that must be
		// named (a nil entry: an unclaimed NAR) and what must be said.
		damage       func(f *fixture, ps map[string]catalog.Path) ([]string, string)
		contentsOnly bool
	}{
		{"NAR file deleted", func(f *fixture, ps map[string]catalog.Path) ([]string, string) {
			f.del(ps["bin"].NARKey)
			return []string{ps["bin"].StorePath}, "NAR file " + ps["bin"].NARKey + " is missing"
		}, false},
		{"NAR file truncated", func(f *fixture, ps map[string]catalog.Path) ([]string, string) {
			b := f.read(ps["app"].NARKey)
			f.put(ps["app"].NARKey, b[:len(b)-1])
			return []string{ps["app"].StorePath}, fmt.Sprintf("has %d bytes, the record says %d", len(b)-1, len(b))
		}, false},
		{"plain NAR file corrupted", func(f *fixture, ps map[string]catalog.Path) ([]string, string) {
			f.put(ps["lib"].NARKey, flip(f.read(ps["lib"].NARKey)))
			return []string{ps["lib"].StorePath}, "NAR file " + ps["lib"].NARKey
		}, true},
		{"xz NAR file corrupted", func(f *fixture, ps map[string]catalog.Path) ([]string, string) {
			f.put(ps["bin"].NARKey, flip(f.read(ps["bin"].NARKey)))
			return []string{ps["bin"].StorePath}, "FileHash is"
		}, true},
		{"zstd NAR file replaced by another NAR of the same size", func(f *fixture, ps map[string]catalog.Path) ([]string, string) {
			other := compress(f.t, ingest.CompZstd, makeNAR(f.t, []byte("pot contents")))
			if len(other) != len(f.read(ps["top"].NARKey)) {
				f.t.Fatal("the replacement has another size")
			}
			f.put(ps["top"].NARKey, other)
			return []string{ps["top"].StorePath}, "NarHash is"
		}, true},
		{"listing deleted", func(f *fixture, ps map[string]catalog.Path) ([]string, string) {
			ls := f.nar(ps["top"]).ListingKey
			f.del(ls)
			return []string{ps["top"].StorePath}, "listing file " + ls
		}, false},
		{"reference not published", func(f *fixture, ps map[string]catalog.Path) ([]string, string) {
			ghost := storePath("ghost")
			p := f.push(storePath("user"), ingest.CompXZ, []byte("user"), ghost, ps["lib"].StorePath[11:])
			return []string{p.StorePath}, "reference " + ghost + " is not published"
		}, false},
		{"shared NAR file deleted", func(f *fixture, ps map[string]catalog.Path) ([]string, string) {
			// Same contents under another name: both paths use one NAR.
			twin := f.push(storePath("lib-twin"), ingest.CompNone, []byte("lib contents"))
			if twin.NARKey != ps["lib"].NARKey {
				f.t.Fatalf("twin NAR %s, lib NAR %s", twin.NARKey, ps["lib"].NARKey)
			}
			f.del(twin.NARKey)
			return []string{ps["lib"].StorePath, twin.StorePath}, "is missing"
		}, false},
		{"narinfo names another NAR", func(f *fixture, ps map[string]catalog.Path) ([]string, string) {
			p := ps["app"]
			p.NarInfo = strings.Replace(p.NarInfo, "URL: "+p.NARKey, "URL: "+ps["top"].NARKey, 1)
			if err := f.cat.Publish(ctx, p, catalog.PublishOptions{}); err != nil {
				f.t.Fatal(err)
			}
			return []string{p.StorePath}, "narinfo URL"
		}, false},
		{"narinfo does not parse", func(f *fixture, ps map[string]catalog.Path) ([]string, string) {
			p := ps["bin"]
			p.NarInfo = "StorePath: " + p.StorePath + "\n"
			if err := f.cat.Publish(ctx, p, catalog.PublishOptions{}); err != nil {
				f.t.Fatal(err)
			}
			return []string{p.StorePath}, "stored narinfo does not parse"
		}, false},
		{"narinfo lists other references", func(f *fixture, ps map[string]catalog.Path) ([]string, string) {
			p := ps["top"]
			p.References = append(p.References, ps["lib"].HashPart)
			if err := f.cat.Publish(ctx, p, catalog.PublishOptions{}); err != nil {
				f.t.Fatal(err)
			}
			return []string{p.StorePath}, "narinfo References"
		}, false},
		{"unclaimed NAR file deleted", func(f *fixture, ps map[string]catalog.Path) ([]string, string) {
			n, _ := f.upload(storePath("later"), ingest.CompXZ, []byte("not published yet"))
			f.del(n.Key)
			return []string{""}, "unclaimed NAR record: NAR file " + n.Key + " is missing"
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, ingest.ModeKeep)
			named, what := tt.damage(f, f.closure())
			slices.Sort(named)
			for _, contents := range []bool{false, true} {
				rep := verify(t, f, contents)
				if tt.contentsOnly && !contents {
					if len(rep.Problems) != 0 {
						t.Errorf("without contents: problems %v", rep.Problems)
					}
					continue
				}
				t.Logf("contents=%v: %q", contents, rep.Problems)
				var got []string
				said := false
				for _, p := range rep.Problems {
					got = append(got, p.StorePath)
					said = said || strings.Contains(p.What, what)
					if p.StorePath != "" && p.HashPart != p.StorePath[11:43] {
						t.Errorf("problem %q has hash part %s", p, p.HashPart)
					}
				}
				if !said {
					t.Errorf("contents=%v: no problem says %q: %v", contents, what, rep.Problems)
				}
				slices.Sort(got)
				if got = slices.Compact(got); !slices.Equal(got, named) {
					t.Errorf("contents=%v: problems name %q, want %q\n%v", contents, got, named, rep.Problems)
				}
			}
		})
	}
}

func TestVerifySelfReference(t *testing.T) {
	f := newFixture(t, ingest.ModeZstd)
	self := storePath("self")
	f.push(self, ingest.CompXZ, []byte("self"), self)
	if rep := verify(t, f, true); rep.Paths != 1 || len(rep.Problems) != 0 {
		t.Errorf("self reference: %+v", rep)
	}
}

var errBroken = errors.New("disk on fire")

// brokenStore fails Stat or Open for one key with an error other than
// not-found.
type brokenStore struct {
	storage.Store
	op, key string
}

func (s brokenStore) Stat(ctx context.Context, key string) (storage.Info, error) {
	if s.op == "stat" && key == s.key {
		return storage.Info{}, errBroken
	}
	return s.Store.Stat(ctx, key)
}

func (s brokenStore) Open(ctx context.Context, key string) (io.ReadSeekCloser, error) {
	if s.op == "open" && key == s.key {
		return nil, errBroken
	}
	r, err := s.Store.Open(ctx, key)
	if s.op == "read" && key == s.key && err == nil {
		return failingReader{r}, nil
	}
	return r, err
}

// failingReader fails after its first bytes.
type failingReader struct{ io.ReadSeekCloser }

func (r failingReader) Read(p []byte) (int, error) {
	if len(p) > 8 {
		p = p[:8]
	}
	n, _ := r.ReadSeekCloser.Read(p)
	if n == 0 {
		return 0, errBroken
	}
	return n, nil
}

// brokenCatalog fails one kind of lookup.
type brokenCatalog struct {
	catalog.Catalog
	op string
}

func (c brokenCatalog) LookupNAR(ctx context.Context, name string) (catalog.NAR, error) {
	if c.op == "lookup" {
		return catalog.NAR{}, errBroken
	}
	return c.Catalog.LookupNAR(ctx, name)
}

func (c brokenCatalog) Path(ctx context.Context, hashPart string) (catalog.Path, error) {
	if c.op == "path" {
		return catalog.Path{}, errBroken
	}
	return c.Catalog.Path(ctx, hashPart)
}

func (c brokenCatalog) UnclaimedNARs(ctx context.Context, before time.Time) ([]catalog.NAR, error) {
	if c.op == "unclaimed" {
		return nil, errBroken
	}
	return c.Catalog.UnclaimedNARs(ctx, before)
}

// TestVerifyCouldNotTell checks that a failure to look is an error, not a
// problem, with or without damage that would need a second look.
func TestVerifyCouldNotTell(t *testing.T) {
	tests := []struct {
		name     string
		contents bool
		wrap     func(f *fixture, ps map[string]catalog.Path) (catalog.Catalog, storage.Store)
	}{
		{"stat NAR", false, func(f *fixture, ps map[string]catalog.Path) (catalog.Catalog, storage.Store) {
			return f.cat, brokenStore{f.store, "stat", ps["bin"].NARKey}
		}},
		{"stat listing", false, func(f *fixture, ps map[string]catalog.Path) (catalog.Catalog, storage.Store) {
			return f.cat, brokenStore{f.store, "stat", f.nar(ps["bin"]).ListingKey}
		}},
		{"open NAR", true, func(f *fixture, ps map[string]catalog.Path) (catalog.Catalog, storage.Store) {
			return f.cat, brokenStore{f.store, "open", ps["app"].NARKey}
		}},
		{"read NAR", true, func(f *fixture, ps map[string]catalog.Path) (catalog.Catalog, storage.Store) {
			return f.cat, brokenStore{f.store, "read", ps["bin"].NARKey}
		}},
		{"look up NAR", false, func(f *fixture, ps map[string]catalog.Path) (catalog.Catalog, storage.Store) {
			return brokenCatalog{f.cat, "lookup"}, f.store
		}},
		{"re-read damaged path", false, func(f *fixture, ps map[string]catalog.Path) (catalog.Catalog, storage.Store) {
			f.del(ps["top"].NARKey)
			return brokenCatalog{f.cat, "path"}, f.store
		}},
		{"look up missing reference", false, func(f *fixture, ps map[string]catalog.Path) (catalog.Catalog, storage.Store) {
			f.push(storePath("user"), ingest.CompXZ, []byte("user"), storePath("ghost"))
			return brokenCatalog{f.cat, "path"}, f.store
		}},
		{"list unclaimed NARs", false, func(f *fixture, ps map[string]catalog.Path) (catalog.Catalog, storage.Store) {
			return brokenCatalog{f.cat, "unclaimed"}, f.store
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, ingest.ModeKeep)
			cat, store := tt.wrap(f, f.closure())
			rep, err := Verify(context.Background(), cat, store, VerifyOptions{Contents: tt.contents})
			if !errors.Is(err, errBroken) {
				t.Errorf("error %v, want %v", err, errBroken)
			}
			if len(rep.Problems) != 0 {
				t.Errorf("a failure to look was reported as problems: %v", rep.Problems)
			}
		})
	}
}

func TestVerifyCanceled(t *testing.T) {
	f := newFixture(t, ingest.ModeZstd)
	f.closure()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Verify(ctx, f.cat, f.store, VerifyOptions{Contents: true}); !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want %v", err, context.Canceled)
	}
}

// racingCatalog shows a walk that ran while the server changed the cache:
// it lists extra (since deleted) paths, hides some (published after the
// walk passed them) and forgets others after the walk (deleted since).
type racingCatalog struct {
	catalog.Catalog
	extra   []catalog.Path
	hide    map[string]bool
	deleted map[string]bool
}

func (c racingCatalog) Path(ctx context.Context, hashPart string) (catalog.Path, error) {
	if c.deleted[hashPart] {
		return catalog.Path{}, catalog.ErrNotFound
	}
	return c.Catalog.Path(ctx, hashPart)
}

func (c racingCatalog) WalkPaths(ctx context.Context, fn func(catalog.Path) error) error {
	for _, p := range c.extra {
		if err := fn(p); err != nil {
			return err
		}
	}
	return c.Catalog.WalkPaths(ctx, func(p catalog.Path) error {
		if c.hide[p.HashPart] {
			return nil
		}
		return fn(p)
	})
}

func TestVerifyConcurrentChanges(t *testing.T) {
	f := newFixture(t, ingest.ModeKeep)
	ps := f.closure()
	gone := ps["top"]
	gone.HashPart, gone.StorePath = storePath("gone")[:32], "/nix/store/"+storePath("gone")
	gone.NARKey = "nar/" + strings.Repeat("0", 52) + ".nar"
	// A path whose reference was never published, deleted after the walk.
	user := f.push(storePath("user"), ingest.CompXZ, []byte("user"), storePath("ghost"))
	cat := racingCatalog{
		Catalog: f.cat,
		extra:   []catalog.Path{gone},
		hide:    map[string]bool{ps["lib"].HashPart: true},
		deleted: map[string]bool{gone.HashPart: true, user.HashPart: true},
	}
	rep, err := Verify(context.Background(), cat, f.store, VerifyOptions{Contents: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 0 || rep.Paths != 4 {
		t.Errorf("changes during the walk: %d paths, problems %v", rep.Paths, rep.Problems)
	}
}
