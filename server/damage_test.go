package server

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nix-cached/cached/storage"
)

// TestMissingBlob deletes the blobs of a published path behind the
// server's back: a GET of its NAR or listing is a 5xx, not a 404 that Nix
// would remember as "absent" for an hour, and is counted; the NAR is
// quarantined, so its path stops being served; a HEAD of the NAR says it
// is absent, so that a client uploads it again, which ends the quarantine.
func TestMissingBlob(t *testing.T) {
	e := newMetricsEnv(t, true)
	p := e.push(pathC, "lost")
	ctx := context.Background()
	path, err := e.cat.Path(ctx, pathC[:32])
	if err != nil {
		t.Fatal(err)
	}
	n, err := e.cat.LookupNAR(ctx, path.NARKey)
	if err != nil {
		t.Fatal(err)
	}
	e.do("GET", "/"+n.Key, "", nil).expect(t, 200, "GET NAR before the loss")
	for _, k := range []string{n.Key, n.ListingKey} {
		if err := e.store.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	before := e.scrape()
	if r := e.do("GET", "/"+n.Key, "", nil).expect(t, 500, "GET of a lost NAR"); strings.Contains(r.body, n.Key) {
		t.Errorf("the answer names the key: %q", r.body)
	}
	e.do("GET", "/"+pathC[:32]+".ls", "", nil).expect(t, 500, "GET of a lost listing")
	after := e.scrape()
	for kind, want := range map[string]float64{"nar": 1, "ls": 1} {
		if d := after.get("cached_blobs_missing_total", "kind", kind) - before.get("cached_blobs_missing_total", "kind", kind); d != want {
			t.Errorf("cached_blobs_missing_total{kind=%q} grew by %v, want %v", kind, d, want)
		}
	}
	if !strings.Contains(e.logs.String(), "recorded in the catalog but missing from storage: "+n.Key) {
		t.Errorf("no log line names the lost blob:\n%s", e.logs)
	}
	// A HEAD, which Nix sends before uploading, says absent (counted
	// unless the NAR was quarantined already).
	e.do("HEAD", "/"+n.Key, "", nil).expect(t, 404, "HEAD of a lost NAR")
	// A NAR that was never uploaded is absent, as before.
	e.do("GET", "/nar/"+zeros52+".nar.xz", "", nil).expect(t, 404, "GET of an unknown NAR")

	// The lost NAR is quarantined at once: the path is no longer served,
	// so Nix goes to another substituter (or builds) instead of failing.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		if e.do("GET", "/"+pathC[:32]+".narinfo", "", nil).code == 404 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the path of a lost NAR is still served")
		}
	}
	// Pushed again (nix copy sees the narinfo missing, and the HEAD of
	// the NAR says absent): the NAR is stored again and the path served.
	e.do("HEAD", "/"+n.Key, "", nil).expect(t, 404, "HEAD of a quarantined NAR")
	e.do("PUT", "/nar/"+p.xzName, pushToken, p.file).expect(t, 204, "PUT of the lost NAR")
	e.do("PUT", "/"+pathC[:32]+".narinfo", pushToken, []byte(p.narinfo.String())).expect(t, 204, "PUT of its narinfo")
	e.do("GET", "/"+pathC[:32]+".narinfo", "", nil).expect(t, 200, "narinfo after the push")
	e.do("GET", "/"+n.Key, "", nil).expect(t, 200, "GET of the restored NAR")
	e.do("GET", "/"+pathC[:32]+".ls", "", nil).expect(t, 200, "GET of the restored listing")
}

// fullStore is a file system with no space left.
type fullStore struct {
	storage.Store
	free int64
}

func (fullStore) Create(context.Context) (storage.Upload, error) {
	return nil, fmt.Errorf("disk: creating upload: %w", syscall.ENOSPC)
}

func (f fullStore) Space() (int64, int64, error) { return f.free, 100 << 30, nil }

// TestDiskFull fills the disk: uploads are refused with 507 and a reason a
// client prints; /readyz stays ready (what is stored is still served) and
// says the storage is full; the space gauges report it.
func TestDiskFull(t *testing.T) {
	e := newMetricsEnv(t, true)
	e.do("GET", "/readyz", "", nil).expect(t, 200, "readyz")
	e.server().store = fullStore{Store: e.store, free: 4096}
	r := e.do("PUT", "/log/"+pathC+".drv", pushToken, []byte("log\n")).expect(t, 507, "PUT to a full disk")
	if !strings.Contains(r.body, "the cache's storage is full") {
		t.Errorf("507 body %q", r.body)
	}
	if r := e.do("GET", "/readyz", "", nil).expect(t, 200, "readyz on a full disk"); !strings.Contains(r.body, "storage: FULL: 4096 bytes free of 107374182400") {
		t.Errorf("readyz body %q", r.body)
	}
	e.server().store = fullStore{Store: e.store, free: 50 << 30}
	if r := e.do("GET", "/readyz", "", nil); !strings.Contains(r.body, "storage: 53687091200 bytes free of 107374182400\n") {
		t.Errorf("readyz body %q", r.body)
	}
}
