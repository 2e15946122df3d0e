package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nix-cached/cached/signing"
	"github.com/nix-cached/cached/upstream"
)

// upstreamFlags are serve's pull-through settings.
type upstreamFlags struct {
	urls, keys        listFlag
	caFile, tokenFile string
	timeout, missTTL  time.Duration
	prefetch          bool
}

func addUpstreamFlags(fs *flag.FlagSet) *upstreamFlags {
	f := &upstreamFlags{timeout: upstream.DefaultTimeout, missTTL: upstream.DefaultMissTTL}
	fs.Var(&f.urls, "upstream", "a binary cache (`URL`) to mirror paths from on a miss (pull-through; repeatable, in priority order)")
	fs.Var(&f.keys, "upstream-key", "a `key` (NAME:BASE64) that narinfos from the upstreams must be signed by (repeatable)")
	fs.StringVar(&f.caFile, "upstream-ca-file", "", "extra CA certificates (PEM `file`) for HTTPS upstreams")
	fs.StringVar(&f.tokenFile, "upstream-token-file", "", "a `file` holding the password (token) for private upstreams, sent as HTTP Basic auth as Nix sends a netrc password")
	fs.Var(durationFlag{&f.timeout}, "upstream-timeout", "give an upstream this long to answer a narinfo lookup")
	fs.Var(durationFlag{&f.missTTL}, "upstream-miss-ttl", "remember this long that no upstream has a path")
	fs.BoolVar(&f.prefetch, "upstream-prefetch", true, "fetch the NAR of each narinfo served from an upstream ahead of its request (4 at a time), so that substitution does not wait for the upstream path after path")
	return f
}

// puller returns the pull-through client of the upstreams, its metrics
// registered with reg; nil without upstreams.
func (f *upstreamFlags) puller(reg prometheus.Registerer) (*upstream.Puller, error) {
	if len(f.urls.vals) == 0 {
		if len(f.keys.vals) > 0 {
			return nil, fmt.Errorf("%w: --upstream-key without --upstream", errUsage)
		}
		return nil, nil
	}
	var keys []signing.PublicKey
	for _, v := range f.keys.vals {
		for _, s := range strings.Fields(v) {
			k, err := signing.ParsePublicKey(s)
			if err != nil {
				return nil, fmt.Errorf("%w: --upstream-key %s: %v", errUsage, s, err)
			}
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: --upstream needs --upstream-key: the keys its narinfos are signed by (cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY= for cache.nixos.org)", errUsage)
	}
	var token string
	if f.tokenFile != "" {
		b, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("--upstream-token-file: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cached_upstream_requests_total",
		Help: "Requests to upstream caches, by upstream, what was asked (narinfo, nar) and outcome (hit, miss, error)."},
		[]string{"upstream", "what", "outcome"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cached_upstream_request_duration_seconds",
		Help:    "Time to an upstream's answer (for a NAR, to its first byte), by upstream and what was asked.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 8)}, []string{"upstream", "what"})
	received := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cached_upstream_received_bytes_total",
		Help: "NAR bytes received from upstream caches, by upstream."}, []string{"upstream"})
	for _, c := range []prometheus.Collector{requests, latency, received} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	return upstream.New(upstream.Config{URLs: f.urls.vals, Keys: keys, CAFile: f.caFile, Token: token,
		Timeout: f.timeout, MissTTL: f.missTTL,
		Observe: func(u, what, outcome string, took time.Duration) {
			requests.WithLabelValues(u, what, outcome).Inc()
			latency.WithLabelValues(u, what).Observe(took.Seconds())
		},
		Received: func(u string, n int64) { received.WithLabelValues(u).Add(float64(n)) }})
}
