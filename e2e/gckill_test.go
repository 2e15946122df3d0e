package e2e

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nix-cached/cached/internal/nixtest"
	"github.com/nix-cached/cached/internal/pgtest"
)

// TestKillGC kills `cached gc` (SIGKILL) after it removed paths and before
// it deleted their blobs, holding the collection's lock: the next `cached
// gc` starts at once, not "another collection is running" until the lock
// expires, and deletes the blobs the killed one left; the cache verifies.
// With the SQLite catalog (a file lock) and with PostgreSQL (a session
// lock).
func TestKillGC(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testKillGC(t, nil) })
	t.Run("postgres", func(t *testing.T) {
		testKillGC(t, []string{"--database", pgtest.Start(t).NewDatabase(t)})
	})
}

func testKillGC(t *testing.T, catalogArgs []string) {
	nix := nixtest.Host(t)
	srv := startCache(t, blobBackend{name: "disk"}, append(catalogArgs, "--gc-interval", "0")...)
	builder := nix.New(t, "netrc-file = "+netrc(t, srv.Token))
	top := builder.Build(closureExpr("gc-kill-" + nixtest.Nonce()))[0]
	closure := builder.Closure(top)
	builder.Run("nix", "copy", "--to", srv.URL, top)
	var blobs []string
	for _, p := range closure {
		blobs = append(blobs, srv.narFile(t, p))
	}
	time.Sleep(2 * time.Second) // older than the retention below

	gcArgs := append([]string{"gc", "--data-dir", srv.Data, "--retention", "1s"}, catalogArgs...)
	gcCmd := exec.Command(binary, gcArgs...)
	gcCmd.Dir = srv.Dir
	stderr, err := gcCmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := gcCmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { // its log, for a failure's message
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			t.Logf("killed gc: %s", sc.Text())
		}
	}()
	// The paths are gone from the catalog; the collection now waits out
	// the grace before deleting their blobs (5 s), holding the lock.
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, _ := srv.get("/"+filepath.Base(top)[:32]+".narinfo", "")
		if code == 404 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the collection did not remove %s", top)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := gcCmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	gcCmd.Wait() //nolint:errcheck // killed
	for _, b := range blobs {
		if _, err := os.Stat(b); err != nil {
			t.Fatalf("the killed collection had deleted %s already (%v): kill it earlier", b, err)
		}
	}

	out, errOut, err := runCached(srv.Dir, append([]string{"gc", "--data-dir", srv.Data}, catalogArgs...)...)
	if err != nil {
		t.Fatalf("the next collection: %v\n%s%s", err, out, errOut)
	}
	if n := strings.Count(errOut, "finished deleting a NAR an earlier run left"); n != len(blobs) {
		t.Errorf("the next collection finished %d deletions, want %d:\n%s", n, len(blobs), errOut)
	}
	for _, b := range blobs {
		if _, err := os.Stat(b); !os.IsNotExist(err) {
			t.Errorf("%s is still there after the next collection: %v", b, err)
		}
	}
	verifyArgs := append([]string{"verify", "--contents", "--data-dir", srv.Data}, catalogArgs...)
	if out := cachedCmd(t, srv.Dir, verifyArgs...); !strings.Contains(out, ": OK") {
		t.Errorf("cached verify:\n%s", out)
	}
}

// findLine returns the first line of text that starts with prefix, or "".
func findLine(text, prefix string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

// narFile returns the file of the NAR of storePath in the cache's disk
// store, as its narinfo names it.
func (c *cache) narFile(t *testing.T, storePath string) string {
	t.Helper()
	code, body := c.get("/"+filepath.Base(storePath)[:32]+".narinfo", "")
	url, ok := strings.CutPrefix(findLine(body, "URL: "), "URL: ")
	if code != 200 || !ok {
		t.Fatalf("narinfo of %s: %d\n%s", storePath, code, body)
	}
	// The disk store shards keys: nar/<xx>/<name>.
	found, _ := filepath.Glob(filepath.Join(c.Data, "blobs", filepath.Dir(url), "*", filepath.Base(url)))
	if len(found) != 1 {
		t.Fatalf("the blob of %s: %v", url, found)
	}
	return found[0]
}
