package server

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nix-cached/cached/narinfo"
	"github.com/nix-cached/cached/stats"
)

// TestUsesAreRecorded checks that narinfo GET/HEAD and NAR GET move a
// path's last use forward (after a flush), and that misses, HEAD of a NAR
// and pushes of other paths do not.
func TestUsesAreRecorded(t *testing.T) {
	e := newEnv(t, true)
	e.push(pathA, "used")
	lastUsed := func() time.Time {
		t.Helper()
		if err := e.usage.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		p, err := e.cat.Path(context.Background(), pathA[:32])
		if err != nil {
			t.Fatal(err)
		}
		return p.LastUsed
	}
	pushed := lastUsed()
	future := pushed.Add(time.Hour)
	defer func() { usageAt = time.Now }()
	step := func(d time.Duration) time.Time {
		future = future.Add(d)
		at := future
		usageAt = func() time.Time { return at }
		return at
	}

	step(time.Minute)
	e.do("GET", "/"+pathB[:32]+".narinfo", "", nil).expect(t, 404, "miss")
	e.do("GET", "/"+pathA[:32]+".narinfo", "", nil).expect(t, 200, "hit")
	if got := lastUsed(); !got.Equal(future) {
		t.Fatalf("after a narinfo GET last use is %v, want %v", got, future)
	}
	at := step(time.Minute)
	e.do("HEAD", "/"+pathA[:32]+".narinfo", "", nil).expect(t, 200, "HEAD narinfo")
	if got := lastUsed(); !got.Equal(at) {
		t.Fatalf("after a narinfo HEAD last use is %v, want %v", got, at)
	}
	r := e.do("GET", "/"+pathA[:32]+".narinfo", "", nil)
	nar := narURL(t, r.body)
	at = step(time.Minute)
	e.do("HEAD", "/"+nar, "", nil).expect(t, 200, "HEAD NAR")
	if got := lastUsed(); got.Equal(at) {
		t.Fatal("a NAR HEAD counted as a use")
	}
	at = step(time.Minute)
	e.do("GET", "/"+nar, "", nil).expect(t, 200, "GET NAR")
	if got := lastUsed(); !got.Equal(at) {
		t.Fatalf("after a NAR GET last use is %v, want %v", got, at)
	}
}

func TestAdminStats(t *testing.T) {
	e := newEnv(t, true)
	e.push(pathA, "counted")
	e.do("GET", "/_cached/stats", "", nil).expect(t, 401, "no token")
	e.do("GET", "/_cached/stats", pushToken, nil).expect(t, 403, "push token")
	r := e.do("GET", "/_cached/stats", adminToken, nil).expect(t, 200, "admin token")
	var rep stats.Report
	if err := json.Unmarshal([]byte(r.body), &rep); err != nil {
		t.Fatalf("%v: %s", err, r.body)
	}
	if rep.Paths != 1 || rep.NARs != 1 || rep.Bytes <= 0 || len(rep.ByLastUse) != len(stats.Ages)+1 || rep.LastGC != nil {
		t.Fatalf("stats: %+v", rep)
	}
}

// narURL returns the URL field of a narinfo.
func narURL(t *testing.T, text string) string {
	t.Helper()
	ni, err := narinfo.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return ni.URL
}
