package gc

import (
	"context"
	"errors"
	"log/slog"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/ingest"
	"github.com/nix-cached/cached/storage"
)

const day = 24 * time.Hour

// pushed is a path published by a test, with the keys of its blobs.
type pushed struct {
	catalog.Path
	Name    string // the name given to node
	Listing string // its NAR's listing key
	Log     string // its build log's key
}

// collector returns a Collector on the fixture's clock.
func (f *fixture) collector(opt Options) *Collector {
	f.t.Helper()
	opt.Now = f.clock.Now
	if opt.BlobGrace == 0 {
		opt.BlobGrace = -1
	}
	if opt.Holder == "" {
		opt.Holder = "test-" + f.t.Name()
	}
	opt.Logger = slog.New(slog.DiscardHandler)
	c, err := New(f.cat, f.store, opt)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// node pushes a path called name (contents made from name) with a deriver
// and a build log; refs are the names of the paths it references, itself
// included if it should reference itself.
func (f *fixture) node(name string, refs ...string) pushed {
	f.t.Helper()
	return f.nodeWith(name, []byte("contents of "+name), refs...)
}

// nodeWith is node with the NAR's text given.
func (f *fixture) nodeWith(name string, text []byte, refs ...string) pushed {
	f.t.Helper()
	return f.nodeComp(name, ingest.CompXZ, text, refs...)
}

// nodeComp is nodeWith with the upload's compression given.
func (f *fixture) nodeComp(name, comp string, text []byte, refs ...string) pushed {
	f.t.Helper()
	return f.publishNode(name, comp, text, false, refs...)
}

// mirrored is node for a path mirrored from an upstream (pull-through).
func (f *fixture) mirrored(name string, refs ...string) pushed {
	f.t.Helper()
	return f.publishNode(name, ingest.CompXZ, []byte("contents of "+name), true, refs...)
}

// publishNode uploads and publishes a path, as pushed or as mirrored.
func (f *fixture) publishNode(name, comp string, text []byte, mirrored bool, refs ...string) pushed {
	f.t.Helper()
	base := storePath(name)
	bases := make([]string, len(refs))
	for i, r := range refs {
		bases[i] = storePath(r)
	}
	n, ni := f.upload(base, comp, text, bases...)
	ni.Deriver = storePath(name + ".drv")
	publish := f.ing.NarInfo
	if mirrored {
		publish = f.ing.MirroredNarInfo
	}
	p, err := publish(context.Background(), base[:32], []byte(ni.String()))
	if err != nil {
		f.t.Fatalf("publishing %s: %v", name, err)
	}
	logKey := "log/" + ni.Deriver
	f.put(logKey, []byte("build log of "+name))
	return pushed{Path: p, Name: name, Listing: n.ListingKey, Log: logKey}
}

// use records a use of the paths now.
func (f *fixture) use(ps ...pushed) {
	f.t.Helper()
	uses := make(map[string]time.Time)
	for _, p := range ps {
		uses[p.HashPart] = f.clock.Now()
	}
	if err := f.cat.RecordUse(context.Background(), uses, nil); err != nil {
		f.t.Fatal(err)
	}
}

// pin pins p under name now.
func (f *fixture) pin(name string, p pushed, keep int, expires time.Time) {
	f.t.Helper()
	err := f.cat.AddPin(context.Background(), catalog.Pin{
		Name: name, HashPart: p.HashPart, StorePath: p.StorePath, CreatedAt: f.clock.Now(), ExpiresAt: expires,
	}, keep)
	if err != nil {
		f.t.Fatal(err)
	}
}

// stored reports whether key holds a blob.
func (f *fixture) stored(key string) bool {
	f.t.Helper()
	_, err := f.store.Stat(context.Background(), key)
	if errors.Is(err, storage.ErrNotFound) {
		return false
	}
	if err != nil {
		f.t.Fatal(err)
	}
	return true
}

// requireAlive fails unless every path is published with its NAR, listing
// and build log stored.
func (f *fixture) requireAlive(ps ...pushed) {
	f.t.Helper()
	for _, p := range ps {
		if _, err := f.cat.NarInfo(context.Background(), p.HashPart); err != nil {
			f.t.Errorf("%s was removed: %v", p.Name, err)
			continue
		}
		for _, key := range []string{p.NARKey, p.Listing, p.Log} {
			if !f.stored(key) {
				f.t.Errorf("%s is published but its blob %s is gone", p.Name, key)
			}
		}
	}
}

// requireGone fails unless every path is unpublished and its NAR, listing
// and build log are deleted.
func (f *fixture) requireGone(ps ...pushed) {
	f.t.Helper()
	for _, p := range ps {
		if _, err := f.cat.NarInfo(context.Background(), p.HashPart); !errors.Is(err, catalog.ErrNotFound) {
			f.t.Errorf("%s is still published (%v)", p.Name, err)
		}
		for _, key := range []string{p.NARKey, p.Listing, p.Log} {
			if f.stored(key) {
				f.t.Errorf("%s is removed but its blob %s is left", p.Name, key)
			}
		}
	}
}

// requireClean fails unless Verify, reading every NAR, finds nothing
// wrong and no NAR is left half deleted.
func (f *fixture) requireClean() {
	f.t.Helper()
	rep, err := Verify(context.Background(), f.cat, f.store, VerifyOptions{Contents: true})
	if err != nil {
		f.t.Fatalf("verify: %v", err)
	}
	for _, p := range rep.Problems {
		f.t.Errorf("verify: %s", p)
	}
	deleting, err := f.cat.DeletingNARs(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	for _, n := range deleting {
		f.t.Errorf("NAR %s is left deleting", n.Key)
	}
}

// names returns the names of doomed paths (their store path's name part).
func names(ds []Doomed) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = strings.SplitN(path.Base(d.StorePath), "-", 2)[1]
	}
	return out
}

// sortedNames is names, sorted.
func sortedNames(ds []Doomed) []string {
	out := names(ds)
	slices.Sort(out)
	return out
}

// run runs a collection and fails the test on error.
func run(t *testing.T, c *Collector) Result {
	t.Helper()
	res, err := c.Run(context.Background())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

// plan plans a collection and fails the test on error.
func plan(t *testing.T, c *Collector) Plan {
	t.Helper()
	p, err := c.Plan(context.Background())
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	return p
}

// publishedNames returns the names of every published path, sorted.
func (f *fixture) publishedNames() []string {
	f.t.Helper()
	var out []string
	err := f.cat.WalkPaths(context.Background(), func(p catalog.Path) error {
		out = append(out, strings.SplitN(path.Base(p.StorePath), "-", 2)[1])
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// blobBytes returns the stored size of the NAR and listing of each path.
func (f *fixture) blobBytes(ps ...pushed) int64 {
	f.t.Helper()
	var n int64
	for _, p := range ps {
		for _, key := range []string{p.NARKey, p.Listing} {
			i, err := f.store.Stat(context.Background(), key)
			if err != nil {
				f.t.Fatal(err)
			}
			n += i.Size
		}
	}
	return n
}
