// Command compare measures cached side by side with the speed ceiling of a
// Nix binary cache: nginx serving a static cache that `nix copy --to
// file://` wrote. It builds a closure with the real Nix client, pushes it
// into both, loads both with wrk, substitutes from both, and writes a
// table with cached/nginx ratios, plus cached's memory with a 1 GiB NAR
// and its narinfo latency and GC time with a million paths. Every push
// and substitution is timed with each Nix client the tests know
// (internal/nixtest): the host's Nix 2.8 and the Nix 2.34 of the Debian
// sid root that scripts/test-deps builds, when it is there. With -ncps,
// ncps (github.com/kalbasit/ncps, built elsewhere) joins as a peer.
//
//	go run ./bench/compare [-out bench/COMPARE.md] [-duration 5s] [-ncps PATH] ...
//
// It needs, as root on Debian: nix-bin, nginx, wrk (apt-get install -y
// nix-bin nginx-light wrk) and Go. `make bench` runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/nix-cached/cached/internal/nixtest"
)

// bench holds what every measurement shares.
type bench struct {
	work      string // scratch directory, removed at the end
	cached    string // the built binary
	token     string // push token of every cached started
	tokenFile string
	netrc     string
	trusted   []string // public keys Nix trusts
	missFile  string   // narinfo URL paths no cache has
	// The test CA and certificate of the HTTPS measurements (setupTLS).
	caFile, certFile, keyFile string
	cores                     int
	conns                     []int
	repeat                    int // wrk runs per server and load, alternating; the median is kept
	verbose                   bool
	host                      *nixtest.Nix   // the host's Nix client
	clients                   []*nixtest.Nix // every client timed, the host's first
	missing                   []string       // why a client is missing
	ncps                      string         // the ncps binary (-ncps), "" for none
}

func (b *bench) logf(format string, args ...any) {
	if b.verbose {
		log.Printf(format, args...)
	}
}

// clock starts a stopwatch.
func (b *bench) clock() func() time.Duration {
	start := time.Now()
	return func() time.Duration { return time.Since(start) }
}

// writeList writes lines to a file in the work directory.
func (b *bench) writeList(name string, lines []string) (string, error) {
	p := filepath.Join(b.work, name)
	return p, os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

func main() {
	out := flag.String("out", "bench/COMPARE.md", "where to write the results (Markdown)")
	dur := flag.Duration("duration", 5*time.Second, "how long each wrk run lasts")
	paths := flag.Int("paths", 200, "leaf paths in the closure (plus one top path)")
	rounds := flag.Int("rounds", 3, "pushes and substitutions timed per cache (the median is reported)")
	repeat := flag.Int("repeat", 3, "wrk runs per server and load, alternating between them (the median is reported)")
	bigMiB := flag.Int64("big-mib", 1024, "size of the NAR for the memory measurement, in MiB (0: skip)")
	million := flag.Int("large-paths", 1_000_000, "synthetic paths for the large-catalog measurement (0: skip)")
	keep := flag.Bool("keep", false, "keep the work directory (caches, logs) for inspection")
	https := flag.Bool("https", true, "also substitute over HTTPS with HTTP/2, from nginx and from cached")
	remote := flag.Duration("upstream-delay", 20*time.Millisecond, "per-request delay of the remote upstream that pull-through is also measured against (0: skip)")
	small := flag.Int("small-paths", 2000, "leaf paths of the closure of small paths substituted from both (0: skip)")
	ncps := flag.String("ncps", "", "an ncps binary (github.com/kalbasit/ncps) to measure as a peer (\"\": none)")
	flag.Parse()
	log.SetFlags(log.Ltime)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	more := extras{keep: *keep, smallPaths: *small, remoteDelay: *remote, https: *https, ncps: *ncps}
	if err := run(ctx, *out, *dur, *paths, *rounds, *repeat, *bigMiB, *million, more); err != nil {
		log.Fatal(err)
	}
}

// extras are the optional parts of a run.
type extras struct {
	keep        bool          // keep the work directory (-keep)
	smallPaths  int           // the closure of small paths (-small-paths; 0: none)
	remoteDelay time.Duration // per-request delay of the remote upstream (-upstream-delay; 0: none)
	https       bool          // substitutions over HTTPS/HTTP2 (-https)
	ncps        string        // the ncps binary (-ncps; "": none)
}

func run(ctx context.Context, out string, dur time.Duration, paths, rounds, repeat int, bigMiB int64, million int, more extras) error {
	for _, tool := range []string{"nix", "nix-build", "nginx", "wrk", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not installed (apt-get install -y nix-bin nginx-light wrk): %w", tool, err)
		}
	}
	b := &bench{cores: runtime.NumCPU(), conns: []int{1, 16, 64}, repeat: max(1, repeat), verbose: true}
	if more.ncps != "" {
		p, err := filepath.Abs(more.ncps)
		if err == nil {
			_, err = os.Stat(p)
		}
		if err != nil {
			return fmt.Errorf("-ncps: %w", err)
		}
		b.ncps = p
	}
	if err := b.findClients(); err != nil {
		return err
	}
	// Under os.TempDir, which nixtest mounts at the same path in the sid
	// root: the chroot's client reads and writes the same files.
	work, err := os.MkdirTemp("", "cached-compare-")
	if err != nil {
		return err
	}
	b.work = work
	if more.keep {
		log.Printf("work directory (kept): %s", work)
	} else {
		defer os.RemoveAll(work)
	}
	b.cached = filepath.Join(work, "cached")
	b.logf("building cached")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", b.cached, "./cmd/cached").CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	if err := b.setupCredentials(ctx); err != nil {
		return err
	}
	var r results
	r.Machine = describeMachine(ctx)
	r.Missing = b.missing
	if b.ncps != "" {
		r.Ncps = b.ncpsVersion(ctx)
	}
	b.logf("building a closure of %d paths with nix-build", paths+1)
	top, closure, err := b.buildClosure(ctx, paths, fmt.Sprint(time.Now().UnixNano()), false)
	if err != nil {
		return err
	}
	r.ClosurePaths = len(closure)
	staticKey := filepath.Join(work, "static.sk")
	seed := "file://" + filepath.Join(work, "seed")
	if _, err := b.pushTo(ctx, b.host, seed+"?compression=zstd&secret-key="+staticKey, top); err != nil {
		return err
	}
	if err := b.seedClients(ctx, top, seed); err != nil {
		return err
	}
	defer b.unseedClients(context.WithoutCancel(ctx), closure)

	// Push with every client, each round into empty caches; the last
	// round's caches are the ones served.
	static, srv, err := b.measurePush(ctx, &r, top, staticKey, rounds)
	if err != nil {
		return err
	}
	defer func() { srv.stop() }()
	ngx, err := b.startNginx(ctx, static)
	if err != nil {
		return err
	}
	defer ngx.stop()
	r.Closure, err = closureSize(static)
	if err != nil {
		return err
	}

	if err := b.measureServing(ctx, &r, ngx, srv, closure, dur); err != nil {
		return err
	}
	if b.ncps != "" {
		if err := b.measureNcpsHits(ctx, &r, ngx, top, dur); err != nil {
			return err
		}
	}
	if more.remoteDelay > 0 {
		if err := b.measureRemote(ctx, ngx, top, rounds, more.remoteDelay, &r); err != nil {
			return err
		}
	}
	if err := b.measureSubstitute(ctx, &r, ngx, srv, top, rounds); err != nil {
		return err
	}
	ngx.stop()

	if more.smallPaths > 0 {
		if err := b.measureSmall(ctx, srv, more.smallPaths, rounds, staticKey, &r); err != nil {
			return err
		}
	}
	if more.https {
		srv.stop() // its data directory is served over HTTPS next
		if err := b.measureTLS(ctx, static, srv.dir, top, rounds, &r); err != nil {
			return err
		}
	}
	if bigMiB > 0 {
		b.logf("memory: a %d MiB NAR", bigMiB)
		n, err := makeBigNAR(work, bigMiB<<20)
		if err != nil {
			return err
		}
		mem, err := b.startCached(ctx, filepath.Join(work, "memory"))
		if err != nil {
			return err
		}
		r.Memory, err = b.measureMemory(ctx, mem, n)
		mem.stop()
		if err != nil {
			return err
		}
		os.Remove(n.path)
		r.BigMiB = bigMiB
	}
	srv.stop()
	if million > 0 {
		b.logf("large catalog: %d synthetic paths", million)
		l, err := b.measureLarge(ctx, million, dur)
		if err != nil {
			return err
		}
		r.Large = &l
	}
	report := r.markdown(dur, b.repeat)
	fmt.Print(report)
	return os.WriteFile(out, []byte(report), 0o644)
}

// measureSubstitute substitutes the closure with every client, round
// after round: through a pull-through cached whose upstream is ngx
// (twice: fetched upstream, then from its own storage), through ncps
// likewise when given, and from ngx and srv, one after the other.
func (b *bench) measureSubstitute(ctx context.Context, r *results, ngx, srv *server, top string, rounds int) error {
	for i := range rounds {
		err := b.eachClient(r, func(n *nixtest.Nix, c *clientRuns) error {
			tag := fmt.Sprintf("%d-%s", i, n.Name)
			b.logf("substitute %d/%d, Nix %s: through a pull-through cached, twice", i+1, rounds, n.Version)
			pull, err := b.startCached(ctx, filepath.Join(b.work, "pull-"+tag),
				"--upstream", ngx.URL, "--upstream-key", b.trusted[0])
			if err != nil {
				return err
			}
			for j, into := range []*[]time.Duration{&c.PullFirst, &c.PullSecond} {
				if err == nil {
					err = b.trust(ctx, pull)
				}
				var took time.Duration
				if err == nil {
					took, err = b.substituteFrom(ctx, n, pull.URL, top)
				}
				if err != nil {
					pull.stop()
					return fmt.Errorf("pull-through, fetch %d: %w", j+1, err)
				}
				*into = append(*into, took)
			}
			pull.stop()
			if b.ncps != "" {
				b.logf("substitute %d/%d, Nix %s: through ncps, twice", i+1, rounds, n.Version)
				if err := b.pullNcps(ctx, n, c, ngx, filepath.Join(b.work, "ncps-pull-"+tag), top); err != nil {
					return err
				}
			}
			if err := b.trust(ctx, srv); err != nil {
				return err
			}
			b.logf("substitute %d/%d", i+1, rounds)
			return b.substituteEach(ctx, n, ngx, srv, top, "the closure", &c.SubstStatic, &c.SubstCached)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// setupCredentials makes the push token, the netrc Nix sends it from and
// the static cache's signing key.
func (b *bench) setupCredentials(ctx context.Context) error {
	b.token = fmt.Sprintf("bench-%d", time.Now().UnixNano())
	b.tokenFile = filepath.Join(b.work, "tokens")
	b.netrc = filepath.Join(b.work, "netrc")
	if err := os.WriteFile(b.tokenFile, []byte(b.token+"\n"), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(b.netrc, []byte("machine 127.0.0.1 password "+b.token+"\n"), 0o600); err != nil {
		return err
	}
	sk, pk := filepath.Join(b.work, "static.sk"), filepath.Join(b.work, "static.pk")
	if _, _, err := b.nix(ctx, "nix-store", "--generate-binary-cache-key", "bench-static-1", sk, pk); err != nil {
		return err
	}
	key, err := os.ReadFile(pk)
	if err != nil {
		return err
	}
	b.trusted = append(b.trusted, strings.TrimSpace(string(key)))
	missing := make([]string, 4096)
	for i := range missing {
		missing[i] = fmt.Sprintf("/%032d.narinfo", i) // digits are nix32, no path has them
	}
	b.missFile, err = b.writeList("misses", missing)
	return err
}

// trust makes the keys of a started cached (or ncps) the trusted ones,
// beside the static cache's. Each data directory gets its own key under
// the same (host) name, and Nix keeps only one key per name: an earlier
// instance's key must go.
func (b *bench) trust(ctx context.Context, s *server) error {
	_, body, err := fetch(ctx, s.URL+s.pubPath)
	if err != nil {
		return err
	}
	b.trusted = append(b.trusted[:1], strings.Fields(body)...)
	return nil
}
