package e2e

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nix-cached/cached/internal/nixtest"
)

// TestS3Outage stops the S3 server during a download and during a push.
// While it is down, narinfos (kept in the catalog) are still served, NARs
// get 5xx and never 404 (Nix would cache a 404 as "absent"), /readyz says
// so, and nothing is half-published. When it returns, the server recovers
// on its own: the cache verifies and every path substitutes.
func TestS3Outage(t *testing.T) {
	nixtest.Each(t, testS3Outage)
}

func testS3Outage(t *testing.T, nix *nixtest.Nix) {
	b := newS3Backend(t)
	builder := nix.New(t)
	srv := startCache(t, b)
	token, pub := srv.Token, srv.Pub
	// One attempt: Nix ≤ 2.32 retries a failed PUT without its body and
	// stalls, and a test need not wait out download retries.
	pusher := func() *nixtest.Client {
		return nix.New(t, "netrc-file = "+netrc(t, token), "download-attempts = 1")
	}

	// A closure with a large NAR, pushed while S3 is up.
	first := builder.Build(bigClosure("first-" + nixtest.Nonce()))[0]
	firstClosure := builder.Closure(first)
	want := hashes(t, builder, firstClosure)
	pusher().Run("nix", "copy", "--to", srv.URL+"?compression=none", first)
	_, ni := srv.get("/"+filepath.Base(first)[:32]+".narinfo", "")
	bigNAR := regexp.MustCompile(`URL: (\S+)`).FindStringSubmatch(ni)[1]
	for _, p := range firstClosure {
		if strings.Contains(p, "-big-") {
			_, bni := srv.get("/"+filepath.Base(p)[:32]+".narinfo", "")
			bigNAR = regexp.MustCompile(`URL: (\S+)`).FindStringSubmatch(bni)[1]
		}
	}

	// S3 goes away during a download: the client gets a short body, never
	// a complete-looking wrong one.
	resp, err := http.Get(srv.URL + "/" + bigNAR)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %v %v", bigNAR, err, resp)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	b.minio.Stop(t)
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if 1<<20+n >= resp.ContentLength {
		t.Fatalf("the whole NAR arrived although S3 stopped mid-download")
	}

	// While S3 is down.
	if code, _ := srv.get("/readyz", ""); code != 503 {
		t.Errorf("/readyz with S3 down: %d", code)
	}
	if code, _ := srv.get("/"+filepath.Base(first)[:32]+".narinfo", ""); code != 200 {
		t.Errorf("narinfo with S3 down: %d", code)
	}
	for _, m := range []string{"GET", "HEAD"} {
		if code, _ := srv.do(m, "/"+bigNAR, "", nil); code < 500 {
			t.Errorf("%s NAR with S3 down: %d, want 5xx", m, code)
		}
	}
	deleteLocally(t, builder, firstClosure)
	down := nix.New(t, "substituters = "+srv.URL, "trusted-public-keys = "+pub, "download-attempts = 1")
	if _, stderr, err := down.Try("nix-store", "-r", first); err == nil {
		t.Fatalf("substitution succeeded with S3 down:\n%s", stderr)
	}
	for _, p := range firstClosure {
		if _, err := os.Lstat(down.Path(p)); err == nil && strings.Contains(p, "-big-") {
			t.Fatalf("%s appeared although its NAR could not be read", p)
		}
	}

	// S3 returns: the server recovers without a restart.
	b.minio.Restart(t)
	waitReady(t, srv.proc)
	substitute(t, nix, srv.URL, pub, first, want)

	// S3 goes away during a push: nothing of the interrupted path is
	// published; after S3 returns the cache verifies and the push succeeds.
	second := builder.Build(bigClosure("second-" + nixtest.Nonce()))[0]
	secondClosure := builder.Closure(second)
	wantSecond := hashes(t, builder, secondClosure)
	push := pusher()
	done := make(chan error, 1)
	go func() {
		_, _, err := push.Try("nix", "copy", "--to", srv.URL+"?compression=none", second)
		done <- err
	}()
	waitFor(t, func() bool { return b.uploading(t) || len(done) > 0 })
	b.minio.Stop(t)
	if err := <-done; err == nil {
		t.Fatal("the push succeeded although S3 stopped while its NAR was being stored")
	}
	if !regexp.MustCompile(`method=PUT path=/nar/\S+ status=5`).MatchString(srv.Stderr.String()) {
		t.Errorf("no NAR upload failed with a 5xx:\n%s", srv.Stderr)
	}
	if code, _ := srv.get("/"+filepath.Base(second)[:32]+".narinfo", ""); code != 404 {
		t.Errorf("the top of an interrupted push is visible: %d", code)
	}
	b.minio.Restart(t)
	waitReady(t, srv.proc)
	srv.verify(t, b)
	pusher().Run("nix", "copy", "--to", srv.URL+"?compression=none", second)
	deleteLocally(t, builder, secondClosure)
	substitute(t, nix, srv.URL, pub, second, wantSecond)
}

// bigClosure is a small path referencing a 96 MiB one.
func bigClosure(nonce string) string {
	d := nixtest.Derivation
	return `let big = ` + d("big-"+nonce, `head -c 100000000 /dev/urandom > $out`) + `;
in ` + d("top-"+nonce, `mkdir $out; ln -s ${big} $out/big`)
}

// waitReady polls /readyz until it answers 200.
func waitReady(t *testing.T, p *proc) {
	t.Helper()
	waitFor(t, func() bool { code, _ := p.get("/readyz", ""); return code == 200 })
}

// waitFor polls cond for up to a minute.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("timed out waiting")
}
