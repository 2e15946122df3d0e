package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nix-cached/cached/internal/nixtest"
)

// TestScrubQuarantine corrupts a stored NAR on disk: the background scrub
// finds it and quarantines it, so that its path and the paths that
// reference it stop being served and Nix substitutes them from another
// substituter instead of failing on a hash mismatch; `cached verify`
// reports them; pushing the closure again restores them.
func TestScrubQuarantine(t *testing.T) {
	nixtest.Each(t, func(t *testing.T, nix *nixtest.Nix) {
		srv := startCache(t, blobBackend{name: "disk"}, "--scrub-interval", "1s")
		builder := nix.New(t)
		pusher := nix.New(t, "netrc-file = "+netrc(t, srv.Token))
		top := builder.Build(closureExpr("scrub-" + nixtest.Nonce()))[0]
		closure := builder.Closure(top)
		want := hashes(t, builder, closure)
		pusher.Run("nix", "copy", "--to", srv.URL, top)
		// Another substituter holding the same closure.
		other := filepath.Join(t.TempDir(), "other")
		builder.Run("nix", "copy", "--to", "file://"+other, top)

		// The NAR of "file" is corrupted: "tree" references it and "top"
		// references tree; "big" is not in its way.
		var dep string
		for _, p := range closure {
			if strings.Contains(p, "-file-") {
				dep = p
			}
		}
		if dep == "" {
			t.Fatalf("no file- path in %v", closure)
		}
		file := srv.narFile(t, dep)
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0x55
		if err := os.WriteFile(file, b, 0o644); err != nil {
			t.Fatal(err)
		}

		// The scrub checks every NAR again within a second or so.
		deadline := time.Now().Add(time.Minute)
		for {
			if code, _ := srv.get("/"+filepath.Base(dep)[:32]+".narinfo", ""); code == 404 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the scrub did not quarantine %s\n%s", dep, srv.Stderr)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if !strings.Contains(srv.Stderr.String(), "quarantined a damaged NAR") {
			t.Errorf("no log line for the quarantine:\n%s", srv.Stderr)
		}
		out, _, err := runCached(srv.Dir, "verify", "--data-dir", srv.Data)
		if err == nil || !strings.Contains(out, dep+": quarantined: not served") {
			t.Errorf("cached verify does not report the quarantined path (%v):\n%s", err, out)
		}

		// Substituted from the other substituter: nothing fails.
		deleteLocally(t, builder, closure)
		c := nix.New(t, "substituters = "+srv.URL+" file://"+other, "require-sigs = false")
		if _, stderr, err := c.Try("nix-store", "-r", top); err != nil {
			t.Fatalf("substituting with a quarantined path in the first substituter: %v\n%s", err, stderr)
		} else if !strings.Contains(stderr, "copying path '"+dep+"' from 'file://") {
			t.Errorf("%s did not come from the other substituter:\n%s", dep, stderr)
		}

		// Pushed again, the closure is served whole and verifies. (With a
		// narinfo cache of its own, as cached push does: the first
		// pusher's remembers the paths as there for 30 days.)
		_, pushLog, err := nix.New(t, "netrc-file = "+netrc(t, srv.Token)).Try("nix", "copy", "--to", srv.URL, top)
		if err != nil {
			t.Fatalf("pushing again: %v\n%s", err, pushLog)
		}
		if out, errOut, err := runCached(srv.Dir, "verify", "--contents", "--data-dir", srv.Data); err != nil {
			t.Fatalf("cached verify after pushing again: %v\n%s%s\npush:\n%s", err, out, errOut, pushLog)
		}
		deleteLocally(t, builder, closure)
		substitute(t, nix, srv.URL, srv.Pub, top, want)
	})
}
