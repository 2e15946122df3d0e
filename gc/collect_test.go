package gc

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nix-cached/cached/ingest"
)

func TestNewOptions(t *testing.T) {
	f := newFixture(t, ingest.ModeZstd)
	for _, opt := range []Options{{Retention: -1}, {MaxSize: -1}, {UploadLease: -time.Hour}} {
		if _, err := New(f.cat, f.store, opt); err == nil {
			t.Errorf("New(%+v) accepted negative settings", opt)
		}
	}
	if _, err := New(nil, f.store, Options{}); err == nil {
		t.Error("New without a catalog succeeded")
	}
	c, err := New(f.cat, f.store, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c.opt.Retention != 365*day || c.opt.UploadLease != day || c.opt.Holder == "" || c.opt.Now == nil || c.opt.Logger == nil {
		t.Errorf("defaults not applied: %+v", c.opt)
	}
}

// TestCollectRetention: a chain whose top is used survives whole; an
// unused closure past the retention goes whole, referrers first, with its
// NARs, listings and build logs.
func TestCollectRetention(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, ingest.ModeZstd)
	c := f.node("c")
	b := f.node("b", "c")
	a := f.node("a", "b")
	e := f.node("e")
	d := f.node("d", "e", "d") // references itself too
	f.clock.Advance(400 * day)
	f.use(a)
	col := f.collector(Options{})

	p := plan(t, col)
	if got := names(p.Remove); !slices.Equal(got, []string{"d", "e"}) {
		t.Fatalf("plan removes %v, want [d e] in that order", got)
	}
	for _, dm := range p.Remove {
		if want := "unused since " + dm.LastUsed.UTC().Format(time.DateOnly) + " (retention 365d)"; dm.Reason != want {
			t.Errorf("reason %q, want %q", dm.Reason, want)
		}
	}
	if p.Paths != 5 || p.LivePaths != 3 || p.OverQuota {
		t.Errorf("plan counts %+v", p)
	}
	if want := p.Started.Add(-365 * day); !p.Cutoff.Equal(want) {
		t.Errorf("cutoff %v, want %v", p.Cutoff, want)
	}
	if want := f.nar(d.Path).FileSize + f.nar(e.Path).FileSize; p.RemoveBytes != want {
		t.Errorf("RemoveBytes %d, want %d", p.RemoveBytes, want)
	}
	var live int64
	for _, x := range []pushed{a, b, c} {
		live += f.nar(x.Path).FileSize
	}
	if p.LiveBytes != live {
		t.Errorf("LiveBytes %d, want %d", p.LiveBytes, live)
	}

	wantBytes := f.blobBytes(d, e)
	res := run(t, col)
	if res.Removed != 2 || res.NARsRemoved != 2 || res.BytesRemoved != wantBytes || len(res.Kept) != 0 {
		t.Errorf("result: removed %d, NARs %d, bytes %d (want %d), kept %v",
			res.Removed, res.NARsRemoved, res.BytesRemoved, wantBytes, res.Kept)
	}
	f.requireAlive(a, b, c)
	f.requireGone(d, e)
	f.requireClean()

	last, err := f.cat.LastGCRun(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if last.PathsRemoved != 2 || last.NARsRemoved != 2 || last.BytesRemoved != wantBytes ||
		last.LivePaths != 3 || last.Error != "" || last.Holder != col.opt.Holder {
		t.Errorf("recorded run %+v", last)
	}
	if res := run(t, col); res.Removed != 0 || len(res.Remove) != 0 {
		t.Errorf("a second run removed %v", names(res.Remove))
	}
}

// TestCollectRetentionSetting: the retention decides what is dead, to the
// millisecond.
func TestCollectRetentionSetting(t *testing.T) {
	tests := []struct {
		retention time.Duration
		want      []string
		reason    string
	}{
		{30 * day, []string{"old", "older"}, "(retention 30d)"},
		{10 * day, []string{"old", "older", "recent"}, "(retention 10d)"},
		{55 * day, []string{"older"}, "(retention 55d)"},
		{50*day + time.Millisecond, []string{"older"}, "(retention 1200h0m0.001s)"},
		{50 * day, []string{"older"}, "(retention 50d)"}, // "old" was used exactly at the cutoff
		{60 * day, nil, ""}, // so was "older"
	}
	for _, tt := range tests {
		t.Run(tt.retention.String(), func(t *testing.T) {
			f := newFixture(t, ingest.ModeZstd)
			older := f.node("older")
			f.clock.Advance(10 * day)
			old := f.node("old")
			f.clock.Advance(30 * day)
			recent := f.node("recent")
			f.clock.Advance(20 * day)
			res := run(t, f.collector(Options{Retention: tt.retention}))
			if got := sortedNames(res.Remove); !slices.Equal(got, tt.want) {
				t.Errorf("removed %v, want %v", got, tt.want)
			}
			for _, d := range res.Remove {
				if !strings.HasSuffix(d.Reason, tt.reason) {
					t.Errorf("reason %q does not end with %q", d.Reason, tt.reason)
				}
			}
			for _, p := range []pushed{older, old, recent} {
				if slices.Contains(tt.want, p.Name) {
					f.requireGone(p)
				} else {
					f.requireAlive(p)
				}
			}
			f.requireClean()
		})
	}
}

// TestCollectSharedNAR: a NAR named by two paths stays until both go.
func TestCollectSharedNAR(t *testing.T) {
	f := newFixture(t, ingest.ModeZstd)
	same := []byte("the same contents")
	s1 := f.nodeWith("s1", same)
	s2 := f.nodeWith("s2", same)
	if s1.NARKey != s2.NARKey {
		t.Fatalf("the two paths have NARs %s and %s", s1.NARKey, s2.NARKey)
	}
	size := f.nar(s1.Path).FileSize
	f.clock.Advance(400 * day)
	f.use(s1)
	col := f.collector(Options{})

	res := run(t, col)
	if got := names(res.Remove); !slices.Equal(got, []string{"s2"}) || res.RemoveBytes != 0 || res.NARsRemoved != 0 {
		t.Fatalf("removed %v (%d bytes planned, %d NARs), want s2 alone and no NAR", got, res.RemoveBytes, res.NARsRemoved)
	}
	if res.LiveBytes != size {
		t.Errorf("LiveBytes %d, want the shared NAR's %d", res.LiveBytes, size)
	}
	f.requireAlive(s1)
	if f.stored(s2.Log) {
		t.Errorf("s2's build log is left")
	}
	f.requireClean()

	f.clock.Advance(400 * day)
	res = run(t, col)
	if got := names(res.Remove); !slices.Equal(got, []string{"s1"}) || res.RemoveBytes != size || res.NARsRemoved != 1 {
		t.Fatalf("removed %v (%d bytes planned, %d NARs), want s1 and its NAR", got, res.RemoveBytes, res.NARsRemoved)
	}
	f.requireGone(s1)
	f.requireClean()
}

// TestCollectSharedListing: NARs of the same contents stored in two
// compressions share a listing, which stays while either remains.
func TestCollectSharedListing(t *testing.T) {
	f := newFixture(t, ingest.ModeKeep)
	same := []byte("stored twice")
	xz := f.nodeComp("xz", ingest.CompXZ, same)
	gz := f.nodeComp("gz", ingest.CompGzip, same)
	if xz.NARKey == gz.NARKey || xz.Listing != gz.Listing {
		t.Fatalf("NARs %s and %s, listings %s and %s: want two NARs and one listing",
			xz.NARKey, gz.NARKey, xz.Listing, gz.Listing)
	}
	gzSize := f.nar(gz.Path).FileSize
	f.clock.Advance(400 * day)
	f.use(xz)
	col := f.collector(Options{})
	res := run(t, col)
	if got := names(res.Remove); !slices.Equal(got, []string{"gz"}) || res.NARsRemoved != 1 || res.BytesRemoved != gzSize {
		t.Fatalf("removed %v, %d NARs, %d bytes; want gz and its NAR of %d bytes, not the listing",
			got, res.NARsRemoved, res.BytesRemoved, gzSize)
	}
	if f.stored(gz.NARKey) {
		t.Error("gz's NAR is left")
	}
	f.requireAlive(xz)
	f.requireClean()

	f.clock.Advance(400 * day)
	run(t, col)
	f.requireGone(xz)
	f.requireClean()
}

// TestCollectSharedDeriver: a build log stays while a path of its deriver
// remains.
func TestCollectSharedDeriver(t *testing.T) {
	f := newFixture(t, ingest.ModeZstd)
	out := f.node("out")
	// A second output of the same derivation.
	base := storePath("dev")
	_, ni := f.upload(base, ingest.CompXZ, []byte("dev output"))
	ni.Deriver = storePath("out.drv")
	if _, err := f.ing.NarInfo(context.Background(), base[:32], []byte(ni.String())); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(400 * day)
	f.use(out)
	if got := names(run(t, f.collector(Options{})).Remove); !slices.Equal(got, []string{"dev"}) {
		t.Fatalf("removed %v, want [dev]", got)
	}
	f.requireAlive(out)
	f.requireClean()
}

// TestCollectDryRunEqualsRun: with nothing changed in between, the run
// removes exactly the plan, in its order.
func TestCollectDryRunEqualsRun(t *testing.T) {
	f := newFixture(t, ingest.ModeZstd)
	f.node("base")
	f.node("lib", "base")
	f.nodeWith("twin1", []byte("twins"), "lib")
	f.nodeWith("twin2", []byte("twins"), "lib")
	f.node("app", "twin1", "lib")
	f.node("tool", "base", "tool")
	pinned := f.node("pinned", "lib")
	expiring := f.node("expiring", "base")
	f.pin("keep", pinned, 0, time.Time{})
	f.pin("short", expiring, 0, f.clock.Now().Add(day))
	f.clock.Advance(200 * day)
	recent := f.node("recent", "tool")
	f.node("unused")
	f.clock.Advance(200 * day)
	f.use(recent)

	for _, maxSize := range []int64{0, 1} {
		col := f.collector(Options{MaxSize: maxSize})
		before := f.publishedNames()
		p := plan(t, col)
		res := run(t, col)
		if !reflect.DeepEqual(res.Plan, p) {
			t.Errorf("max size %d: the run's plan differs from the dry run's:\n%+v\n%+v", maxSize, res.Plan, p)
		}
		if res.Removed != len(p.Remove) || len(res.Kept) != 0 {
			t.Errorf("max size %d: removed %d of %d planned, kept %v", maxSize, res.Removed, len(p.Remove), res.Kept)
		}
		after := f.publishedNames()
		var gone []string
		for _, n := range before {
			if !slices.Contains(after, n) {
				gone = append(gone, n)
			}
		}
		if want := sortedNames(p.Remove); !slices.Equal(gone, want) {
			t.Errorf("max size %d: the run removed %v, the plan said %v", maxSize, gone, want)
		}
		f.requireClean()
	}
}
