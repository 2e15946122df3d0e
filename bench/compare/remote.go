package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"time"
)

// startRemote serves upstream through a proxy that holds every request
// for delay before passing it on: an upstream across a network, such as
// cache.nixos.org from a build machine.
func startRemote(upstream string, delay time.Duration) (string, func(), error) {
	u, err := url.Parse(upstream)
	if err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(delay)
		proxy.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}

// measureRemote substitutes top straight from a remote upstream (ngx
// behind a delay) and through cached mirroring it, with and without
// prefetching, alternating round after round.
func (b *bench) measureRemote(ctx context.Context, ngx *server, top string, rounds int, delay time.Duration, r *results) error {
	remote, stop, err := startRemote(ngx.URL, delay)
	if err != nil {
		return err
	}
	defer stop()
	r.RemoteDelay = delay
	for i := range rounds {
		b.logf("substitute %d/%d: from an upstream %v away, straight and through cached", i+1, rounds, delay)
		took, err := b.substituteFrom(ctx, remote, top)
		if err != nil {
			return err
		}
		r.RemoteDirect = append(r.RemoteDirect, took)
		for _, prefetch := range []bool{true, false} {
			c, err := b.startCached(ctx, filepath.Join(b.work, fmt.Sprintf("remote-%d-%v", i, prefetch)),
				"--upstream", remote, "--upstream-key", b.trusted[0], fmt.Sprintf("--upstream-prefetch=%v", prefetch))
			if err != nil {
				return err
			}
			if err = b.trustCached(ctx, c); err == nil {
				took, err = b.substituteFrom(ctx, c.URL, top)
			}
			c.stop()
			if err != nil {
				return err
			}
			if prefetch {
				r.RemotePrefetch = append(r.RemotePrefetch, took)
			} else {
				r.RemoteNoPrefetch = append(r.RemoteNoPrefetch, took)
			}
		}
	}
	return nil
}
