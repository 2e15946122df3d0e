package resign

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/catalog/catalogtest"
	"github.com/nix-cached/cached/catalog/sqlite"
	"github.com/nix-cached/cached/ingest"
	"github.com/nix-cached/cached/internal/testclock"
	"github.com/nix-cached/cached/narinfo"
	"github.com/nix-cached/cached/nixhash"
	"github.com/nix-cached/cached/signing"
	"github.com/nix-cached/cached/storage/memory"
)

// env is a SQLite catalog with paths pushed by clients that sign with
// the client key, and the keys a cache rolls over: a, then b.
type env struct {
	t      *testing.T
	cat    catalog.Catalog
	a, b   signing.SecretKey
	client signing.SecretKey
	clock  *testclock.Clock
	mu     sync.Mutex
	slept  time.Duration // what the fake clock's sleeps added up to
}

func newEnv(t *testing.T) *env {
	t.Helper()
	cat, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	e := &env{t: t, cat: cat, clock: testclock.New(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))}
	for _, k := range []struct {
		key  *signing.SecretKey
		name string
	}{{&e.a, "cache-a-1"}, {&e.b, "cache-b-1"}, {&e.client, "client-1"}} {
		if *k.key, err = signing.GenerateKey(k.name, nil); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// ingester signs with keys and strips the retired names.
func (e *env) ingester(keys []signing.SecretKey, retired ...string) *ingest.Ingester {
	e.t.Helper()
	in, err := ingest.New(memory.New(), e.cat, ingest.Options{Keys: keys, RetiredKeys: retired})
	if err != nil {
		e.t.Fatal(err)
	}
	return in
}

// resigner returns a Resigner of keys and retired, started at the fake
// clock's now, whose sleeps advance the fake clock.
func (e *env) resigner(signer Signer, keys []signing.SecretKey, retired ...string) *Resigner {
	e.t.Helper()
	pubs := make([]signing.PublicKey, len(keys))
	for i, k := range keys {
		pubs[i] = k.Public()
	}
	e.clock.Advance(time.Second) // each configuration starts later than the last
	r, err := New(e.cat, signer, Options{
		Keys: pubs, Retired: retired, Rate: 1000, Holder: fmt.Sprintf("test:%v", e.clock.Now().Unix()),
		Logger: slog.New(slog.DiscardHandler), Poll: time.Second, Retry: time.Second,
		now: e.clock.Now,
		sleep: func(ctx context.Context, d time.Duration) error {
			e.mu.Lock()
			e.slept += d
			e.mu.Unlock()
			e.clock.Advance(d)
			return ctx.Err()
		},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// narInfo is the narinfo a client pushes for the path named by seed,
// signed by the client key and, if given, another client key.
func (e *env) narInfo(seed string, more ...signing.SecretKey) (narinfo.NarInfo, catalog.NAR) {
	hash := catalogtest.HashPart(seed)
	fileHash := nixhash.NewSHA256(sha256.Sum256([]byte("file:" + seed)))
	narHash := nixhash.NewSHA256(sha256.Sum256([]byte("nar:" + seed)))
	n := catalog.NAR{Key: "nar/" + fileHash.Nix32() + ".nar.zst", Compression: "zstd", FileHash: fileHash.String(),
		FileSize: 50, NarHash: narHash.String(), NarSize: 100, CreatedAt: e.clock.Now()}
	ni := narinfo.NarInfo{StorePath: "/nix/store/" + hash + "-" + seed, URL: n.Key, Compression: "zstd",
		FileHash: fileHash, FileSize: 50, NarHash: narHash, NarSize: 100}
	fp, err := ni.AppendFingerprint(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, k := range append([]signing.SecretKey{e.client}, more...) {
		ni.Sigs = append(ni.Sigs, k.Sign(fp))
	}
	return ni, n
}

// push publishes the path named by seed through in, as a push to a
// server with its keys does, and returns its hash part.
func (e *env) push(in *ingest.Ingester, seed string, more ...signing.SecretKey) string {
	e.t.Helper()
	ni, n := e.narInfo(seed, more...)
	if err := e.cat.PutNAR(context.Background(), n); err != nil {
		e.t.Fatal(err)
	}
	hash := catalogtest.HashPart(seed)
	if _, err := in.NarInfo(context.Background(), hash, []byte(ni.String())); err != nil {
		e.t.Fatal(err)
	}
	return hash
}

// pushMany pushes paths "<prefix>-<i>" and returns their hash parts, sorted.
func (e *env) pushMany(in *ingest.Ingester, prefix string, n int) []string {
	e.t.Helper()
	hashes := make([]string, n)
	for i := range n {
		hashes[i] = e.push(in, fmt.Sprintf("%s-%d", prefix, i))
	}
	slices.Sort(hashes)
	return hashes
}

// signers returns the key names that signed hash's narinfo, sorted,
// failing the test unless every signature verifies with its key.
func (e *env) signers(hash string, known ...signing.SecretKey) string {
	e.t.Helper()
	p, err := e.cat.Path(context.Background(), hash)
	if err != nil {
		e.t.Fatal(err)
	}
	ni, err := narinfo.Parse([]byte(p.NarInfo))
	if err != nil {
		e.t.Fatal(err)
	}
	fp, _ := ni.AppendFingerprint(nil)
	var names []string
	for _, s := range ni.Sigs {
		sig, err := signing.ParseSignature(s)
		if err != nil {
			e.t.Fatal(err)
		}
		names = append(names, sig.KeyName)
		for _, k := range known {
			if k.Name() == sig.KeyName && !k.Public().Verify(fp, s) {
				e.t.Errorf("%s: the signature of %s does not verify", hash, k.Name())
			}
		}
	}
	slices.Sort(names)
	return strings.Join(names, " ")
}

// checkSigners fails the test unless every path of hashes is signed by
// exactly want (key names, space-separated and sorted).
func (e *env) checkSigners(step string, hashes []string, want string) {
	e.t.Helper()
	for _, h := range hashes {
		if got := e.signers(h, e.a, e.b, e.client); got != want {
			e.t.Fatalf("%s: %s is signed by %q, want %q", step, h, got, want)
		}
	}
}

// state reads the re-signing state.
func (e *env) state() catalog.ResignState {
	e.t.Helper()
	st, err := e.cat.ResignState(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

// step runs one Step of r and fails the test on error.
func (e *env) step(r *Resigner) {
	e.t.Helper()
	if _, err := r.Step(context.Background()); err != nil {
		e.t.Fatalf("Step: %v", err)
	}
}

// changesSince counts the change log entries after seq.
func (e *env) changesSince(seq int64) int {
	e.t.Helper()
	ch, err := e.cat.Changes(context.Background(), seq, 1<<20)
	if err != nil {
		e.t.Fatal(err)
	}
	return len(ch)
}

func (e *env) lastChange() int64 {
	e.t.Helper()
	seq, err := e.cat.LastChange(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return seq
}

// signerFunc makes a function a Signer.
type signerFunc func(string) (string, error)

func (f signerFunc) Resign(text string) (string, error) { return f(text) }
