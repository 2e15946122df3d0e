package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nix-cached/cached/auth"
	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/catalog/infocache"
	"github.com/nix-cached/cached/gc"
	"github.com/nix-cached/cached/ingest"
	"github.com/nix-cached/cached/internal/logbuf"
	"github.com/nix-cached/cached/metrics"
	"github.com/nix-cached/cached/server"
	"github.com/nix-cached/cached/signing"
	"github.com/nix-cached/cached/storage"
	"github.com/nix-cached/cached/storepath"
	"github.com/nix-cached/cached/usage"
)

// presignTTL is how long a --s3-redirect URL is valid: long enough for a
// client to start the download (S3 checks expiry when a request starts).
const presignTTL = 15 * time.Minute

type serveFlags struct {
	data            *dataFlags
	listen          string
	signingKeys     listFlag
	pushTokenFile   string
	readTokenFile   string
	private         bool
	storeDir        string
	priority        int
	wantMassQuery   bool
	narCompression  string
	zstdLevel       int
	allowIncomplete bool
	gc              *gcFlags
	gcInterval      time.Duration
	adminTokenFile  string
	logLevel        string
	logFormat       string
	logFlush        time.Duration
	narinfoCache    int64
	maxNARSize      int64
	scrub           *scrubFlags
	resign          *resignFlags
	upstream        *upstreamFlags
	s3Redirect      bool
	procs           int
	tls             *tlsFlags
}

func newServeFlags() (*flag.FlagSet, *serveFlags) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	usageFlags(fs, `usage: cached serve [flags]

Serves the binary cache: substitution (narinfo, NAR, listings, build logs)
for Nix clients, and verified uploads with a push token (nix copy --to).
Run with no flags it keeps everything in ./cached-data and listens on
127.0.0.1:8080.`)
	f := &serveFlags{data: addDataFlags(fs)}
	fs.StringVar(&f.listen, "listen", "127.0.0.1:8080", "`address` to listen on (use :8080 for every interface)")
	f.tls = addTLSFlags(fs)
	fs.Var(&f.signingKeys, "signing-key-file", "secret key `file` to sign narinfos with (repeatable; default: DATA-DIR/signing-key, generated on first start)")
	fs.StringVar(&f.pushTokenFile, "push-token-file", "", "`file` of push tokens, one a line (in addition to `cached token create`)")
	fs.StringVar(&f.readTokenFile, "read-token-file", "", "`file` of read tokens, one a line; when set, reads need a token")
	fs.BoolVar(&f.private, "private", false, "reads need a token: a read token (cached token create --scope read, or --read-token-file), or a push or admin token")
	fs.StringVar(&f.storeDir, "store-dir", storepath.DefaultStoreDir, "Nix store `directory` of the cached paths")
	fs.IntVar(&f.priority, "priority", 30, "substituter `priority` advertised in nix-cache-info (lower is tried first; cache.nixos.org is 40)")
	fs.BoolVar(&f.wantMassQuery, "want-mass-query", true, "advertise WantMassQuery in nix-cache-info")
	fs.StringVar(&f.narCompression, "nar-compression", ingest.ModeZstd, "how NARs are stored (`mode`): zstd (transcode xz, bzip2, gzip and none to zstd) or keep (as uploaded)")
	fs.IntVar(&f.zstdLevel, "zstd-level", 3, "zstd `level` for transcoded NARs (1-22)")
	fs.BoolVar(&f.allowIncomplete, "allow-incomplete-closures", false, "publish paths whose references are not in the cache")
	f.gc = addGCFlags(fs)
	f.gcInterval = 24 * time.Hour
	fs.Var(durationFlag{&f.gcInterval}, "gc-interval", "collect garbage this often (0 turns scheduled collection off)")
	fs.StringVar(&f.adminTokenFile, "admin-token-file", "", "`file` of admin tokens, one a line (for /_cached/stats)")
	fs.BoolVar(&f.s3Redirect, "s3-redirect", false, "answer NAR downloads with a 307 to a short-lived presigned S3 URL (needs --storage s3://...)")
	fs.StringVar(&f.logLevel, "log-level", "info", "log `level`: debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", "text", "log `format`: text or json")
	f.logFlush = 100 * time.Millisecond
	fs.Var(durationFlag{&f.logFlush}, "log-flush", "write log lines out in batches this often (0: each line at once)")
	f.narinfoCache = infocache.DefaultMaxBytes
	f.scrub = addScrubFlags(fs)
	f.resign = addResignFlags(fs)
	f.upstream = addUpstreamFlags(fs)
	f.maxNARSize = ingest.DefaultMaxNARSize
	fs.Var(sizeFlag{&f.maxNARSize}, "max-nar-size", "refuse (413) a NAR that expands to more than this `size` (0: no limit)")
	fs.Var(sizeFlag{&f.narinfoCache}, "narinfo-cache", "`memory` for narinfos (and known misses) kept in memory, followed through the catalog's change log (0: none)")
	fs.IntVar(&f.procs, "procs", 0, "Go processors (GOMAXPROCS, a `number`) to run with (0: 4 per CPU, or the CPU quota or GOMAXPROCS when set)")
	return fs, f
}

// microseconds writes a record's time to the microsecond (slog's text
// handler writes milliseconds), so that the request log can tell how
// many uploads overlapped: a narinfo PUT takes about a millisecond.
func microseconds(groups []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey && len(groups) == 0 && a.Value.Kind() == slog.KindTime {
		a.Value = slog.StringValue(a.Value.Time().Format("2006-01-02T15:04:05.000000Z07:00"))
	}
	return a
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("%w: --log-level %q", errUsage, level)
	}
	opts := &slog.HandlerOptions{Level: lv, ReplaceAttr: microseconds}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("%w: --log-format %q (want text or json)", errUsage, format)
}

func runServe(ctx context.Context, args []string, stdout io.Writer) error {
	fs, f := newServeFlags()
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: serve takes no arguments, got %q", errUsage, fs.Args())
	}
	// A server's live heap is small and its garbage is per-request: the
	// default GOGC=100 collects so often that collections set the tail
	// latency of narinfo hits. 400 trades some memory (still bounded: NAR
	// streams do not grow the heap) for fewer pauses. GOGC in the
	// environment wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	procs := setServeProcs(f.procs)
	// Log lines go out in batches every 100 ms rather than a write each:
	// at thousands of requests a second the writes cost more than the
	// lookups. Close (on any return) writes out the rest. Tests that
	// read the log as it is written turn batching off (--log-flush 0).
	var logOut io.Writer = os.Stderr
	if f.logFlush > 0 {
		batched := logbuf.New(os.Stderr, f.logFlush)
		defer batched.Close()
		logOut = batched
	}
	log, err := newLogger(logOut, f.logLevel, f.logFormat)
	if err != nil {
		return err
	}
	b, err := f.data.create(ctx)
	if err != nil {
		return err
	}
	defer b.Close()
	// The narinfo cache is live heap, which GOGC=400 would let grow five
	// times over before a collection: a soft limit keeps the heap near
	// what the cache and requests need (measured: 525 MiB of peak RSS
	// serving a million paths without it). GOMEMLIMIT in the
	// environment wins.
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(baseMemoryLimit + 2*f.narinfoCache)
	}
	if f.narinfoCache > 0 {
		// Everything below, the collector included, goes through the
		// cache, so what this process publishes or deletes is forgotten
		// at once; what others do, within a poll of the change log.
		b.cat = infocache.New(ctx, b.cat, infocache.Options{MaxBytes: f.narinfoCache, Logger: log})
	}

	keys, err := loadOrCreateKeys(ctx, f, b, stdout)
	if err != nil {
		return err
	}
	if err := f.resign.check(keys); err != nil {
		return err
	}
	authCfg, err := tokenConfig(ctx, f, b.cat, stdout)
	if err != nil {
		return err
	}
	ing, err := ingest.New(b.store, b.cat, ingest.Options{
		StoreDir:               f.storeDir,
		Mode:                   f.narCompression,
		ZstdLevel:              f.zstdLevel,
		Keys:                   keys,
		RetiredKeys:            f.resign.retired.vals,
		AllowIncompleteClosure: f.allowIncomplete,
		MaxNARSize:             cmp.Or(f.maxNARSize, math.MaxInt64),
	})
	if err != nil {
		return err
	}
	var redirect time.Duration
	if f.s3Redirect {
		if _, ok := b.store.(storage.Presigner); !ok {
			return fmt.Errorf("%w: --s3-redirect needs --storage s3://...", errUsage)
		}
		redirect = presignTTL
	}
	rec := usage.New(b.cat, nil, log)
	reg := prometheus.NewRegistry()
	met, err := metrics.New(reg)
	if err != nil {
		return err
	}
	met.Catalog(b.cat)
	if err := registerLanes(reg, ing); err != nil {
		return err
	}
	scrub, err := f.scrub.scrubber(b, reg, log)
	if err != nil {
		return err
	}
	resigner, err := f.resign.resigner(b, ing, keys, reg, log)
	if err != nil {
		return err
	}
	pull, err := f.upstream.puller(reg)
	if err != nil {
		return err
	}
	col, err := f.gc.collector(b, log, pull)
	if err != nil {
		return err
	}
	if sr, ok := b.store.(storage.SpaceReporter); ok {
		met.StorageSpace(func() (int64, int64, bool) {
			free, capacity, err := sr.Space()
			return free, capacity, err == nil
		})
	}
	pubs := make([]signing.PublicKey, len(keys))
	for i, k := range keys {
		pubs[i] = k.Public()
	}
	srv, err := server.New(server.Config{
		StoreDir:         f.storeDir,
		Priority:         f.priority,
		WantMassQuery:    f.wantMassQuery,
		PublicKeys:       pubs,
		RedirectTTL:      redirect,
		Usage:            rec,
		Metrics:          met,
		Upstream:         pull,
		UpstreamPrefetch: f.upstream.prefetch,
		Logger:           log,
	}, b.cat, b.store, ing, auth.New(authCfg, b.cat))
	if err != nil {
		return err
	}

	tlsConfig, err := f.tls.config(log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return err
	}
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		TLSConfig:         tlsConfig, // net/http adds HTTP/2 (ALPN h2) to it
	}
	scheme := "http"
	if tlsConfig != nil {
		scheme = "https"
	}
	for _, p := range pubs {
		fmt.Fprintf(stdout, "public key: %s\n", p)
	}
	fmt.Fprintf(stdout, "cached: serving %s://%s (store %s, data %s)\n", scheme, ln.Addr(), f.storeDir, f.data.dataDir)
	log.Info("serving", "url", scheme+"://"+ln.Addr().String(), "store_dir", f.storeDir, "data_dir", f.data.dataDir,
		"public_keys", len(pubs), "public_read", authCfg.PublicRead, "procs", procs)

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// Background work stops after the last request, so the final use
	// flush sees every request, and before the catalog closes.
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBG()
	var wg sync.WaitGroup
	background := func(task func(context.Context)) {
		wg.Add(1)
		go func() { defer wg.Done(); task(bg) }()
	}
	background(func(c context.Context) { rec.Run(c, usageFlushEvery) })
	background(func(c context.Context) { sweepLoop(c, col, met, log, f.gc.uploadLease) })
	background(func(c context.Context) { gcLoop(c, col, b.cat, met, log, f.gcInterval) })
	if scrub != nil {
		background(scrub.Run)
	}
	if resigner != nil {
		background(resigner.Run)
	}

	errc := make(chan error, 1)
	go func() {
		if tlsConfig != nil {
			errc <- hs.ServeTLS(ln, "", "")
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing requests in flight")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	srv.Wait()
	stopBG()
	wg.Wait()
	log.Info("stopped")
	return nil
}

// usageFlushEvery is how often recorded path uses reach the catalog.
const usageFlushEvery = 5 * time.Second

// baseMemoryLimit is the soft memory limit of `cached serve` without a
// narinfo cache; the cache's size counts twice on top.
const baseMemoryLimit = 96 << 20

// sweepLoop removes unclaimed uploads regularly: a minute after start, then
// every lease/24 (at least every minute, at most hourly).
func sweepLoop(ctx context.Context, col *gc.Collector, met *metrics.Metrics, log *slog.Logger, lease time.Duration) {
	every := min(max(lease/24, time.Minute), time.Hour)
	t := time.NewTimer(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		res, err := col.SweepUnclaimed(ctx)
		met.Sweep(res, err)
		switch {
		case errors.Is(err, gc.ErrLocked):
			log.Info("sweep of unclaimed uploads skipped: a collection is running")
		case err != nil && ctx.Err() == nil:
			log.Error("sweeping unclaimed uploads", "err", err)
		case res.NARs+res.Blobs > 0:
			log.Info("swept unclaimed uploads", "nars", res.NARs, "orphan_blobs", res.Blobs, "bytes", res.Bytes)
		}
		t.Reset(every)
	}
}

// gcLoop collects garbage every interval, counted from the end of the last
// collection recorded in the catalog (by this server, another replica or
// `cached gc`), so restarts do not postpone it forever; the first one runs
// ten minutes after start if there was none.
func gcLoop(ctx context.Context, col *gc.Collector, cat catalog.Catalog, met *metrics.Metrics, log *slog.Logger, interval time.Duration) {
	if interval <= 0 {
		return
	}
	for {
		next := time.Now().Add(10 * time.Minute)
		if last, err := cat.LastGCRun(ctx); err == nil {
			next = last.Finished.Add(interval)
		}
		wait := max(time.Until(next), time.Second)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		started := time.Now()
		res, err := col.Run(ctx)
		met.GCRun(res, err, time.Since(started))
		switch {
		case errors.Is(err, gc.ErrLocked):
			log.Info("garbage collection skipped: another one is running")
		case err != nil && ctx.Err() == nil:
			log.Error("garbage collection failed", "err", err)
		case err == nil:
			log.Info("garbage collection done", "removed_paths", res.Removed, "removed_bytes", res.BytesRemoved,
				"kept_racing", len(res.Kept), "live_paths", res.LivePaths, "live_bytes", res.LiveBytes, "over_quota", res.OverQuota)
		}
	}
}

// tokenConfig loads token files. When neither a push token file nor any
// push token in the catalog exists, it creates one and prints it once.
func tokenConfig(ctx context.Context, f *serveFlags, cat catalog.Catalog, stdout io.Writer) (auth.Config, error) {
	cfg := auth.Config{PublicRead: f.readTokenFile == "" && !f.private}
	var err error
	if f.adminTokenFile != "" {
		if cfg.AdminTokens, err = auth.ReadTokenFile(f.adminTokenFile); err != nil {
			return cfg, err
		}
	}
	if f.pushTokenFile != "" {
		if cfg.PushTokens, err = auth.ReadTokenFile(f.pushTokenFile); err != nil {
			return cfg, err
		}
	}
	if f.readTokenFile != "" {
		if cfg.ReadTokens, err = auth.ReadTokenFile(f.readTokenFile); err != nil {
			return cfg, err
		}
	}
	if len(cfg.PushTokens) > 0 || len(cfg.AdminTokens) > 0 {
		return cfg, nil
	}
	toks, err := cat.Tokens(ctx)
	if err != nil {
		return cfg, err
	}
	for _, t := range toks {
		if t.Scope == catalog.ScopePush || t.Scope == catalog.ScopeAdmin {
			return cfg, nil
		}
	}
	secret, err := createToken(ctx, cat, "default", catalog.ScopePush)
	if err != nil {
		return cfg, err
	}
	fmt.Fprintf(stdout, "push token (shown only this once; use it as the netrc password): %s\n", secret)
	return cfg, nil
}

// registerLanes registers the gauges of ing's uploader lanes (see
// ingest.WithUploader) with reg.
func registerLanes(reg prometheus.Registerer, ing *ingest.Ingester) error {
	waiting := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cached_upload_expansion_waiting",
		Help: "NAR uploads expanding past 100 times their compressed size, waiting for their uploader's previous one to finish"},
		func() float64 { w, _ := ing.LaneStats(); return float64(w) })
	taken := prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "cached_upload_expansion_serialized_total",
		Help: "NAR uploads that expanded past 100 times their compressed size (and 256 MiB), run one at a time per uploader"},
		func() float64 { _, t := ing.LaneStats(); return float64(t) })
	for _, c := range []prometheus.Collector{waiting, taken} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
	}
	return nil
}
