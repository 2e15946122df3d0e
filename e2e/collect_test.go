package e2e

import (
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nix-cached/cached/internal/nixtest"
)

// build builds a closureExpr closure in the container and returns its top
// path and closure, with each path's NAR hash.
func (c *container) build(name string) (string, map[string]string) {
	c.t.Helper()
	f := filepath.Join(c.root, name+".nix")
	writeFile(c.t, f, closureExpr(name+"-"+nixtest.Nonce()))
	top := strings.TrimSpace(c.Run("nix-build", "--no-out-link", f))
	return top, hashes(c.t, c, strings.Fields(c.Run("nix-store", "-qR", top)))
}

// valid tells whether a path is in the container's store.
func (c *container) valid(p string) bool {
	c.t.Helper()
	out := c.Run("nix-store", "--check-validity", "--print-invalid", p)
	return strings.TrimSpace(out) == ""
}

// TestCollect collects a container's store with cached collect: one
// closure already in the cache, one that is not, one alive throughout,
// and one that becomes alive while collect runs. Every deleted path is
// then in the cache and substitutes back byte-identical; nothing the
// cache lacked was deleted, and neither live closure was touched.
func TestCollect(t *testing.T) {
	nixtest.Each(t, func(t *testing.T, nix *nixtest.Nix) {
		box := newContainer(t, nix)
		srv := startCache(t, blobBackend{name: "disk"}, "--store-dir", box.store())
		pushedTop, pushed := box.build("pushed")
		lostTop, unpushed := box.build("unpushed")
		rootedTop, rooted := box.build("rooted")
		lateTop, late := box.build("late")
		box.Run(binary, "push", "--to", srv.URL, "--token", srv.Token, pushedTop)
		box.Run("nix-store", "--realise", "--add-root", filepath.Join(box.root, "rooted-link"), rootedTop)

		// A proxy before the cache makes "late" alive when collect first
		// asks the cache what it holds: after it listed the dead paths.
		target, _ := url.Parse(srv.URL)
		proxy := httputil.NewSingleHostReverseProxy(target)
		// A connection of its own per request: the shared pool of this
		// test process may hold one to an earlier server on the same port.
		proxy.Transport = &http.Transport{DisableKeepAlives: true}
		var once sync.Once
		var lateErr error // the handler's goroutine must not call t.Fatal
		front := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/_cached/lookup" {
				once.Do(func() {
					_, stderr, err := box.try(nil, "nix-store", "--realise", "--add-root", filepath.Join(box.root, "late-link"), lateTop)
					if err != nil {
						lateErr = fmt.Errorf("making %s alive: %w\n%s", lateTop, err, stderr)
					}
				})
			}
			proxy.ServeHTTP(w, r)
		}))

		dry := box.Run(binary, "collect", "--to", srv.URL, "--token", srv.Token, "--dry-run")
		if !strings.Contains(dry, "would archive "+lostTop) || strings.Contains(dry, "would archive "+pushedTop) {
			t.Errorf("collect --dry-run said:\n%s", dry)
		}
		for p := range unpushed {
			if !box.valid(p) {
				t.Fatalf("collect --dry-run deleted %s", p)
			}
		}

		out, stderr, err := box.try(nil, binary, "collect", "--to", front, "--token", srv.Token)
		once.Do(func() {}) // the handler's write of lateErr happens before this
		if lateErr != nil || err != nil {
			t.Fatalf("cached collect: %v\n%s%s\n(%v)", err, out, stderr, lateErr)
		}
		t.Logf("cached collect:\n%s", out)
		for what, set := range map[string]map[string]string{"rooted": rooted, "late": late} {
			for p := range set {
				if !box.valid(p) {
					t.Errorf("%s path %s was deleted", what, p)
				}
			}
		}
		if !strings.Contains(out, "kept "+lateTop+": it became alive while collect ran") {
			t.Errorf("collect does not say it kept %s:\n%s", lateTop, out)
		}
		for _, set := range []map[string]string{pushed, unpushed} {
			for p := range set {
				if box.valid(p) {
					t.Errorf("%s is still in the store", p)
				}
				if code, _ := srv.get("/"+filepath.Base(p)[:32]+".narinfo", ""); code != 200 {
					t.Errorf("%s was deleted but the cache answers %d", p, code)
				}
			}
		}
		srv.verify(t, blobBackend{name: "disk"})

		// Everything deleted comes back from the cache, byte for byte.
		log := box.substitute(srv.URL, srv.Pub, pushedTop, lostTop)
		for _, set := range []map[string]string{pushed, unpushed} {
			checkSubstituted(t, box, srv.URL, log, set)
		}
	})
}

// substitute realises paths from the cache at url, trusting key, and
// returns Nix's log.
func (c *container) substitute(url, key string, paths ...string) string {
	c.t.Helper()
	_, log := c.runLog(nil, "nix-store", append([]string{"--realise", "--option", "substituters", url,
		"--option", "trusted-public-keys", key}, paths...)...)
	return log
}

// startHTTP serves h on loopback for the test and returns its URL.
func startHTTP(t *testing.T, h http.Handler) string {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s.URL
}

// TestCollectKill kills cached collect at several moments of its run:
// after every kill, each path of the store is still there or the cache
// serves it. A last run finishes the job, and everything comes back.
func TestCollectKill(t *testing.T) {
	nixtest.Each(t, func(t *testing.T, nix *nixtest.Nix) {
		box := newContainer(t, nix)
		srv := startCache(t, blobBackend{name: "disk"}, "--store-dir", box.store())
		want := map[string]string{}
		var tops []string
		for _, name := range []string{"one", "two", "three"} {
			top, set := box.build(name)
			tops = append(tops, top)
			maps.Copy(want, set)
		}
		for _, delay := range []time.Duration{30, 100, 250, 500, 1000, 2000} {
			cmd := box.nix.Command(box.env, binary, "collect", "--to", srv.URL, "--token", srv.Token)
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(delay * time.Millisecond)
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			cmd.Wait()
			for p := range want {
				if !box.valid(p) {
					if code, _ := srv.get("/"+filepath.Base(p)[:32]+".narinfo", ""); code != 200 {
						t.Fatalf("after a kill at %v ms, %s is neither in the store nor in the cache (%d)", int(delay), p, code)
					}
				}
			}
		}
		last := box.Run(binary, "collect", "--to", srv.URL, "--token", srv.Token)
		for p := range want {
			if box.valid(p) {
				t.Errorf("%s survived the last collect:\n%s", p, last)
			}
		}
		srv.verify(t, blobBackend{name: "disk"})
		checkSubstituted(t, box, srv.URL, box.substitute(srv.URL, srv.Pub, tops...), want)
	})
}

// TestCollectOtherStore collects a store other than the default one, given
// with --store as a proxy container's volume would be: a store whose real
// root is a directory.
func TestCollectOtherStore(t *testing.T) {
	nixtest.Each(t, func(t *testing.T, nix *nixtest.Nix) {
		srv := startCache(t, blobBackend{name: "disk"})
		c := nix.New(t)
		top := c.Build(closureExpr("volume-" + nixtest.Nonce()))[0]
		closure := c.Closure(top)
		volume := t.TempDir()
		c.Run("nix", "copy", "--no-check-sigs", "--to", volume, top)
		want := hashes(t, c, closure)
		out := c.Run(binary, "collect", "--store", volume, "--to", srv.URL, "--token", srv.Token)
		if !strings.Contains(out, "archived 4") || !strings.Contains(out, "freed 4") {
			t.Errorf("cached collect --store %s said:\n%s", volume, out)
		}
		if invalid := c.Run("nix-store", append([]string{"--store", volume, "--check-validity", "--print-invalid"}, closure...)...); len(strings.Fields(invalid)) != 4 {
			t.Errorf("still in the volume's store: %v", closure)
		}
		_, log, err := c.Try("nix-store", "--store", volume, "--realise", "--option", "substituters", srv.URL,
			"--option", "trusted-public-keys", srv.Pub, top)
		if err != nil {
			t.Fatalf("substituting into the volume: %v\n%s", err, log)
		}
		for p, h := range want {
			if got := strings.TrimSpace(c.Run("nix-store", "--store", volume, "-q", "--hash", p)); got != h {
				t.Errorf("%s came back as %s, was %s", p, got, h)
			}
		}
	})
}
