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

	"github.com/nix-cached/cached/internal/nixtest"
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
// prefetching, with every client, alternating round after round.
func (b *bench) measureRemote(ctx context.Context, ngx *server, top string, rounds int, delay time.Duration, r *results) error {
	remote, stop, err := startRemote(ngx.URL, delay)
	if err != nil {
		return err
	}
	defer stop()
	r.RemoteDelay = delay
	for i := range rounds {
		err := b.eachClient(r, func(n *nixtest.Nix, cr *clientRuns) error {
			b.logf("substitute %d/%d, Nix %s: from an upstream %v away, straight and through cached", i+1, rounds, n.Version, delay)
			took, err := b.substituteFrom(ctx, n, remote, top)
			if err != nil {
				return err
			}
			cr.RemoteDirect = append(cr.RemoteDirect, took)
			for _, prefetch := range []bool{true, false} {
				c, err := b.startCached(ctx, filepath.Join(b.work, fmt.Sprintf("remote-%d-%s-%v", i, n.Name, prefetch)),
					"--upstream", remote, "--upstream-key", b.trusted[0], fmt.Sprintf("--upstream-prefetch=%v", prefetch))
				if err != nil {
					return err
				}
				if err = b.trust(ctx, c); err == nil {
					took, err = b.substituteFrom(ctx, n, c.URL, top)
				}
				c.stop()
				if err != nil {
					return err
				}
				if prefetch {
					cr.RemotePrefetch = append(cr.RemotePrefetch, took)
				} else {
					cr.RemoteNoPrefetch = append(cr.RemoteNoPrefetch, took)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
