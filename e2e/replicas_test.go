package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/catalog/postgres"
	"github.com/nix-cached/cached/internal/nixtest"
	"github.com/nix-cached/cached/internal/pgtest"
)

// TestReplicas runs two `cached serve` processes sharing one PostgreSQL and
// one S3 bucket, as replicas behind a Service would: a path pushed through
// one is served by the other within a poll of the change log, even when it
// remembered the path as missing; killing one mid-upload leaves the
// cache consistent and the client's retry through the other succeeds; and
// only one garbage collection runs across them.
func TestReplicas(t *testing.T) {
	nixtest.Each(t, testReplicas)
}

func testReplicas(t *testing.T, nix *nixtest.Nix) {
	b := newS3Backend(t)
	pg := pgtest.Start(t)
	db := pg.NewDatabase(t)
	builder := nix.New(t)
	dir := t.TempDir()
	sk, pk := filepath.Join(dir, "sk"), filepath.Join(dir, "pk")
	cachedCmd(t, dir, "keygen", "replicas-1", sk, pk)
	pub := readFile(t, pk)
	token := "replica-token-" + nixtest.Nonce()
	writeFile(t, filepath.Join(dir, "tokens"), token+"\n")
	shared := append(b.args(), "--database", db, "--signing-key-file", sk,
		"--push-token-file", filepath.Join(dir, "tokens"), "--gc-interval", "0")
	replica := func(name string) *proc {
		data := filepath.Join(dir, name)
		return start(t, dir, b.env, append([]string{"--listen", "127.0.0.1:0", "--data-dir", data}, shared...)...)
	}
	a, c := replica("a"), replica("b")
	push := func(via *proc, paths ...string) (string, error) {
		cl := nix.New(t, "netrc-file = "+netrc(t, token), "download-attempts = 1")
		_, stderr, err := cl.Try("nix", append([]string{"copy", "--to", via.URL + "?compression=none"}, paths...)...)
		return stderr, err
	}

	// Pushed through one replica, substituted through the other.
	top := builder.Build(closureExpr("replicas-" + nixtest.Nonce()))[0]
	closure := builder.Closure(top)
	want := hashes(t, builder, closure)
	// Replica b is asked first and remembers the miss (its narinfo
	// cache); it learns of the push from the change log within a poll.
	topInfo := "/" + filepath.Base(top)[:32] + ".narinfo"
	if code, _ := c.get(topInfo, ""); code != 404 {
		t.Fatalf("narinfo of an unpushed path: %d", code)
	}
	if stderr, err := push(a, top); err != nil {
		t.Fatalf("push through replica a: %v\n%s", err, stderr)
	}
	pushed := time.Now()
	waitFor(t, func() bool { code, _ := c.get(topInfo, ""); return code == 200 })
	if took := time.Since(pushed); took > catalog.MaxNarInfoAge {
		t.Errorf("replica b answered the remembered miss for %v after the push", took)
	}
	deleteLocally(t, builder, closure)
	substitute(t, nix, c.URL, pub, top, want)

	// Replica a dies (kill -9) while it stores a large NAR.
	big := builder.Build(bigClosure("replicas-" + nixtest.Nonce()))[0]
	bigClosure := builder.Closure(big)
	wantBig := hashes(t, builder, bigClosure)
	done := make(chan error, 1)
	go func() { _, err := push(a, big); done <- err }()
	waitFor(t, func() bool { return b.uploading(t) || len(done) > 0 })
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil {
		t.Fatal("the push succeeded although its replica was killed while storing its NAR")
	}
	verifyArgs := append([]string{"verify", "--contents", "--data-dir", filepath.Join(dir, "verify"), "--database", db}, b.args()...)
	if out := cachedCmd(t, dir, verifyArgs...); !strings.Contains(out, ": OK") {
		t.Fatalf("cached verify after killing a replica:\n%s", out)
	}
	if stderr, err := push(c, big); err != nil {
		t.Fatalf("the retry through replica b failed: %v\n%s", err, stderr)
	}
	deleteLocally(t, builder, bigClosure)
	a = replica("a")
	substitute(t, nix, a.URL, pub, big, wantBig)

	// One collection across replicas: while another holder has the lock in
	// PostgreSQL, `cached gc` says so and does nothing.
	cat, err := postgres.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	if ok, err := cat.TryLock(context.Background(), "gc", "another-replica", time.Minute); err != nil || !ok {
		t.Fatalf("TryLock: %v, %v", ok, err)
	}
	gcArgs := append([]string{"gc", "--data-dir", filepath.Join(dir, "gc"), "--retention", "1s"}, b.args()...)
	gcArgs = append(gcArgs, "--database", db)
	if out, err := cachedTry(t, dir, gcArgs...); err == nil || !strings.Contains(out, "another collection is running") {
		t.Fatalf("cached gc while another replica collects: %v\n%s", err, out)
	}
	if err := cat.Unlock(context.Background(), "gc", "another-replica"); err != nil {
		t.Fatal(err)
	}
	a.stop() // flushes the uses it recorded
	time.Sleep(1500 * time.Millisecond)
	if out, err := cachedTry(t, dir, gcArgs...); err != nil || !strings.Contains(out, "removed") {
		t.Fatalf("cached gc after the lock was released: %v\n%s", err, out)
	}
	for _, p := range append(closure, bigClosure...) {
		if code, _ := c.get("/"+filepath.Base(p)[:32]+".narinfo", ""); code != 404 {
			t.Errorf("%s survived a collection with 1s retention on the other replica: %d", p, code)
		}
	}
}
