package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/nix-cached/cached/catalog/sqlite"
	"github.com/nix-cached/cached/catalog/synth"
)

// large is what was measured on a cache with a million paths.
type large struct {
	Paths      int
	Fill       time.Duration
	Hits       map[int]load // by connections
	Misses     map[int]load
	GC         time.Duration
	GCSummary  string
	DBSizeMiB  float64
	RetainDays int
}

// measureLarge fills a new data directory with synthetic paths whose
// creation and last use are spread over two years, serves it and loads
// it with narinfo requests, then times `cached gc --retention 365d`, which
// walks the whole graph and removes the paths (and NARs) outside the
// closures of those used within the year.
func (b *bench) measureLarge(ctx context.Context, paths int, d time.Duration) (large, error) {
	res := large{Paths: paths, Hits: map[int]load{}, Misses: map[int]load{}, RetainDays: 365}
	dir := filepath.Join(b.work, "large")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return res, err
	}
	db := filepath.Join(dir, "cached.db")
	c, err := sqlite.Open(ctx, db)
	if err != nil {
		return res, err
	}
	c.Close()
	t := b.clock()
	filled, err := synth.FillSQLite(ctx, db, synth.Options{
		Paths: paths, Rand: rand.New(rand.NewPCG(1, 2)), Now: time.Now(), Spread: 2 * 365 * 24 * time.Hour,
	})
	if err != nil {
		return res, err
	}
	res.Fill = t()
	if fi, err := os.Stat(db); err == nil {
		res.DBSizeMiB = float64(fi.Size()) / (1 << 20)
	}
	// The synthetic paths are signed by no key and their NARs have no
	// blobs: a server with a key of its own would re-sign them all, and
	// its scrub would quarantine them, both while they are measured. A
	// catalog that holds paths also needs a key given on purpose.
	key := filepath.Join(dir, "bench-large.key")
	if out, err := exec.CommandContext(ctx, b.cached, "keygen", "bench-large-1", key, key+".pub").CombinedOutput(); err != nil {
		return res, fmt.Errorf("cached keygen: %w\n%s", err, out)
	}
	srv, err := b.startCached(ctx, dir, "--signing-key-file", key, "--scrub-rate", "0", "--resign-rate", "0")
	if err != nil {
		return res, err
	}
	r := rand.New(rand.NewPCG(3, 4))
	hits := make([]string, 0, 100_000)
	for range cap(hits) {
		hits = append(hits, "/"+filled.Hashes[r.IntN(len(filled.Hashes))]+".narinfo")
	}
	hitFile, err := b.writeList("large-hits", hits)
	if err != nil {
		srv.stop()
		return res, err
	}
	for _, conns := range b.conns {
		b.logf("1M paths: narinfo hits over %d connections", conns)
		l, err := b.wrk(ctx, srv.URL, conns, d, hitFile)
		if err != nil || l.NotOK > 0 {
			srv.stop()
			return res, fmt.Errorf("narinfo hits at %d paths: %+v %v", paths, l, err)
		}
		res.Hits[conns] = l
		b.logf("1M paths: narinfo misses over %d connections", conns)
		if l, err = b.wrk(ctx, srv.URL, conns, d, b.missFile); err != nil || l.NotOK != l.Requests {
			srv.stop()
			return res, fmt.Errorf("narinfo misses at %d paths: %+v %v", paths, l, err)
		}
		res.Misses[conns] = l
	}
	srv.stop()
	b.logf("1M paths: cached gc --retention %dd", res.RetainDays)
	cmd := exec.CommandContext(ctx, b.cached, "gc", "--data-dir", dir, "--retention", fmt.Sprintf("%dd", res.RetainDays))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	t = b.clock()
	out, err := cmd.Output()
	res.GC = t()
	if err != nil {
		return res, fmt.Errorf("cached gc: %w\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	res.GCSummary = lines[len(lines)-1]
	return res, nil
}
