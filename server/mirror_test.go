package server

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nix-cached/cached/narinfo"
	"github.com/nix-cached/cached/signing"
	"github.com/nix-cached/cached/upstream"
)

// mirrorEnv is a cached (down) whose upstream is another cached (up).
// wait waits for down's background commits.
func mirrorEnv(t testing.TB) (up, down *env, wait func()) {
	t.Helper()
	up = newEnv(t, true)
	down, wait = downstreamOf(t, up, up.srv.URL)
	return up, down, wait
}

// downstreamOf is a cached whose upstream, at url, serves up's paths.
func downstreamOf(t testing.TB, up *env, url string, opts ...func(*Config)) (down *env, wait func()) {
	t.Helper()
	puller, err := upstream.New(upstream.Config{URLs: []string{url}, Keys: []signing.PublicKey{up.key.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	p := newParts(t, true, logs, append([]func(*Config){func(c *Config) { c.Upstream = puller }}, opts...)...)
	down = &env{t: t, cat: p.cat, store: p.store, key: p.key, logs: logs, usage: p.usage}
	down.srv = httptest.NewServer(p.s)
	t.Cleanup(down.srv.Close)
	return down, p.s.Wait
}

// fetchMirrored substitutes p's narinfo and NAR from down as Nix would,
// checks the bytes are those up serves, and returns the NAR's file name.
func fetchMirrored(t testing.TB, up, down *env, p pushed) string {
	t.Helper()
	ur := up.do("GET", "/"+p.base[:32]+".narinfo", "", nil).expect(t, 200, "GET upstream narinfo")
	uni, err := narinfo.Parse([]byte(ur.body))
	if err != nil {
		t.Fatal(err)
	}
	want := up.do("GET", "/"+uni.URL, "", nil).expect(t, 200, "GET upstream NAR").body
	r := down.do("GET", "/"+p.base[:32]+".narinfo", "", nil).expect(t, 200, "GET mirrored narinfo")
	ni, err := narinfo.Parse([]byte(r.body))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ni.URL, "mirror/"+p.base[:32]+"/") {
		t.Fatalf("URL %q is not under mirror/", ni.URL)
	}
	nr := down.do("GET", "/"+ni.URL, "", nil).expect(t, 200, "GET mirrored NAR")
	if nr.body != want {
		t.Fatalf("mirrored NAR of %s: %d bytes differ from the %d upstream serves", p.base, len(nr.body), len(want))
	}
	return ni.URL[strings.LastIndexByte(ni.URL, '/')+1:]
}

// A referrer whose NAR is committed before its reference's waits, and is
// published with it: the commits run off the request, so their order is
// not the client's.
func TestMirrorPublishesReferrerAfterReference(t *testing.T) {
	up, down, waitBG := mirrorEnv(t)
	a := up.push(strings.Repeat("a", 32)+"-lib", "the library")
	b := up.push(strings.Repeat("b", 32)+"-app", "the app", a.base)

	bFile := fetchMirrored(t, up, down, b) // the referrer first: it must wait
	waitBG()
	if r := down.do("GET", "/nar/"+bFile, "", nil); r.code != http.StatusOK {
		t.Fatalf("the referrer's NAR was not stored: %d", r.code)
	}
	if _, err := down.cat.Path(t.Context(), b.base[:32]); err == nil {
		t.Fatal("the referrer was published before its reference")
	}
	fetchMirrored(t, up, down, a)
	waitBG()
	for _, p := range []pushed{a, b} {
		got, err := down.cat.Path(t.Context(), p.base[:32])
		if err != nil {
			t.Fatalf("%s not published once its reference was: %v", p.base, err)
		}
		if !strings.Contains(got.NarInfo, "Sig: "+down.key.Name()+":") || !strings.Contains(got.NarInfo, "Sig: "+up.key.Name()+":") {
			t.Errorf("%s: published without both signatures:\n%s", p.base, got.NarInfo)
		}
		if !got.Mirrored {
			t.Errorf("%s: not recorded as mirrored", p.base)
		}
	}
	// Served from storage now, with the upstream gone.
	up.srv.Close()
	r := down.do("GET", "/"+b.base[:32]+".narinfo", "", nil).expect(t, 200, "GET narinfo after the upstream stopped")
	if !strings.Contains(r.body, "URL: nar/"+bFile) {
		t.Errorf("narinfo after publication does not point at the stored NAR:\n%s", r.body)
	}
}

// A narinfo is not served while one of its references is available
// neither here nor upstream (an upstream that lost it): Nix would fail to
// substitute the closure, where a 404 lets it build or try elsewhere.
func TestMirrorNeedsReferences(t *testing.T) {
	up := newEnv(t, true)
	a := up.push(strings.Repeat("a", 32)+"-lib", "the library")
	b := up.push(strings.Repeat("b", 32)+"-app", "the app", a.base)
	proxy := httputil.NewSingleHostReverseProxy(mustParseURL(t, up.srv.URL))
	var lost atomic.Bool
	lost.Store(true)
	lossy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if lost.Load() && r.URL.Path == "/"+a.base[:32]+".narinfo" {
			http.NotFound(w, r)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(lossy.Close)
	down, wait := downstreamOf(t, up, lossy.URL)
	down.do("GET", "/"+b.base[:32]+".narinfo", "", nil).expect(t, 404, "GET narinfo of a path whose reference upstream lost")
	wait()
	if _, err := down.cat.Path(t.Context(), b.base[:32]); err == nil {
		t.Error("the path was published")
	}
	// With its reference back upstream, it is served (by a cache that
	// has not remembered the miss).
	lost.Store(false)
	down2, _ := downstreamOf(t, up, lossy.URL)
	fetchMirrored(t, up, down2, b)
}

func mustParseURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// BenchmarkMirrorFetch substitutes a path of 1 KiB through a pull-through
// cached whose upstream is another cached: a narinfo lookup and the NAR's
// fetch, as Nix makes them, per path.
func BenchmarkMirrorFetch(b *testing.B) {
	up, down, wait := mirrorEnv(b)
	paths := make([]pushed, b.N)
	for i := range paths {
		base := fmt.Sprintf("%032d", i)
		base = strings.NewReplacer("0", "a", "1", "b", "2", "c", "3", "d", "4", "f", "5", "g", "6", "h", "7", "i", "8", "j", "9", "k").Replace(base) + "-p"
		paths[i] = up.push(base, strings.Repeat(fmt.Sprint(i), 1024))
	}
	b.ResetTimer()
	for _, p := range paths {
		r := down.do("GET", "/"+p.base[:32]+".narinfo", "", nil).expect(b, 200, "GET narinfo")
		url := r.body[strings.Index(r.body, "URL: ")+5:]
		url = url[:strings.IndexByte(url, '\n')]
		down.do("GET", "/"+url, "", nil).expect(b, 200, "GET NAR")
	}
	b.StopTimer()
	wait()
}

// Serving a mirrored narinfo fetches its NAR ahead of the request: the
// path is stored and published without its NAR being asked for, and
// served from storage once the upstream is gone.
func TestMirrorPrefetch(t *testing.T) {
	up := newEnv(t, true)
	a := up.push(strings.Repeat("a", 32)+"-lib", "the library")
	b := up.push(strings.Repeat("b", 32)+"-app", "the app", a.base)
	down, wait := downstreamOf(t, up, up.srv.URL, func(c *Config) { c.UpstreamPrefetch = true })
	for _, p := range []pushed{b, a} {
		down.do("GET", "/"+p.base[:32]+".narinfo", "", nil).expect(t, 200, "GET mirrored narinfo")
	}
	// Wait stops the prefetcher after its current jobs: poll instead.
	deadline := time.Now().Add(10 * time.Second)
	for _, p := range []pushed{a, b} {
		for {
			if _, err := down.cat.Path(t.Context(), p.base[:32]); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s was not prefetched and published", p.base)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	wait()
	up.srv.Close()
	r := down.do("GET", "/"+b.base[:32]+".narinfo", "", nil).expect(t, 200, "GET narinfo with the upstream gone")
	url := r.body[strings.Index(r.body, "URL: ")+5:]
	url = url[:strings.IndexByte(url, '\n')]
	down.do("GET", "/"+url, "", nil).expect(t, 200, "GET the prefetched NAR with the upstream gone")
}
