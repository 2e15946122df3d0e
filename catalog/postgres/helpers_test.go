package postgres

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/catalog/catalogtest"
)

// t0 is the tests' reference time.
var t0 = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

// fakeHash and hashPart are the conformance suite's, so that a seed names
// the same hash in both.
var (
	fakeHash = catalogtest.FakeHash
	hashPart = catalogtest.HashPart
)

// newNAR returns a NAR record named by seed, created at created, with a
// listing.
func newNAR(seed string, created time.Time) catalog.NAR {
	fh := fakeHash("file:"+seed, 52)
	return catalog.NAR{
		Key: "nar/" + fh + ".nar.zst", Compression: "zstd",
		FileHash: "sha256:" + fh, FileSize: 100, NarHash: "sha256:" + fakeHash("nar:"+seed, 52), NarSize: 200,
		ListingKey: "ls/" + fakeHash("nar:"+seed, 52) + ".ls", CreatedAt: created,
	}
}

// newPath returns the path named by seed stored in n, referencing the
// paths named by refs.
func newPath(seed string, n catalog.NAR, refs ...string) catalog.Path {
	h := hashPart(seed)
	p := catalog.Path{
		HashPart: h, StorePath: "/nix/store/" + h + "-" + seed, NARKey: n.Key,
		NarHash: n.NarHash, NarSize: n.NarSize, CreatedAt: n.CreatedAt,
		NarInfo: "StorePath: /nix/store/" + h + "-" + seed + "\nURL: " + n.Key + "\n",
	}
	for _, r := range refs {
		p.References = append(p.References, hashPart(r))
	}
	return p
}

// must fails the test when err is not nil.
func must(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// publish records n and p or fails the test.
func publish(t testing.TB, c catalog.Catalog, n catalog.NAR, p catalog.Path) {
	t.Helper()
	must(t, "PutNAR", c.PutNAR(context.Background(), n))
	must(t, "Publish", c.Publish(context.Background(), p, catalog.PublishOptions{}))
}

// publishMany publishes count paths, each with its own NAR, seeded
// prefix0, prefix1, ..., and returns their hash parts in that order.
func publishMany(t testing.TB, c catalog.Catalog, prefix string, count int) []string {
	t.Helper()
	hashes := make([]string, 0, count)
	for i := range count {
		n := newNAR(fmt.Sprint(prefix, i), t0)
		p := newPath(fmt.Sprint(prefix, i), n)
		publish(t, c, n, p)
		hashes = append(hashes, p.HashPart)
	}
	return hashes
}

// race runs a and b at the same moment, each on its own goroutine, and
// waits for both.
func race(a, b func()) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	wg.Go(func() { <-start; a() })
	wg.Go(func() { <-start; b() })
	close(start)
	wg.Wait()
}
