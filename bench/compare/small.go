package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/nix-cached/cached/internal/nixtest"
)

// measureSmall pushes and substitutes a closure of n small paths, a
// binary tree, with every client, alternating round after round: where
// per-path costs (the client's own work, and a few requests per path)
// dominate rather than bytes, and where a client may upload or fetch many
// paths at once. Each round pushes into a new WebDAV root and a new
// cached; the substitutions are from nginx (a static cache written by nix
// copy --to file://) and from srv.
func (b *bench) measureSmall(ctx context.Context, srv *server, n, rounds int, staticKey string, r *results) error {
	b.logf("building a closure of %d small paths with nix-build", n+1)
	top, closure, err := b.buildClosure(ctx, n, fmt.Sprint("small-", time.Now().UnixNano()), true)
	if err != nil {
		return err
	}
	static := filepath.Join(b.work, "static-small")
	if _, err := b.pushTo(ctx, b.host, "file://"+static+"?compression=zstd&secret-key="+staticKey, top); err != nil {
		return err
	}
	if err := b.seedClients(ctx, top, "file://"+static); err != nil {
		return err
	}
	defer b.unseedClients(context.WithoutCancel(ctx), closure)
	if err := b.trust(ctx, srv); err != nil {
		return err
	}
	if _, err := b.pushTo(ctx, b.host, srv.URL+"?compression=zstd", top); err != nil {
		return err
	}
	ngx, err := b.startNginx(ctx, static)
	if err != nil {
		return err
	}
	defer ngx.stop()
	r.SmallPaths = len(closure)
	what := fmt.Sprintf("%d small paths", len(closure))
	for i := range rounds {
		err := b.eachClient(r, func(n *nixtest.Nix, c *clientRuns) error {
			tag := fmt.Sprintf("small-%d-%s", i, n.Name)
			b.logf("push %d/%d, Nix %s: %s into nginx WebDAV and into cached", i+1, rounds, n.Version, what)
			took, err := b.pushToDAV(ctx, n, filepath.Join(b.work, "dav-"+tag), top)
			if err != nil {
				return err
			}
			c.SmallPushDAV = append(c.SmallPushDAV, took)
			fresh, err := b.startCached(ctx, filepath.Join(b.work, "cached-"+tag))
			if err != nil {
				return err
			}
			took, err = b.pushTo(ctx, n, fresh.URL+"?compression=zstd", top)
			fresh.stop()
			if err != nil {
				return err
			}
			c.SmallPushCached = append(c.SmallPushCached, took)
			if err := b.trust(ctx, srv); err != nil {
				return err
			}
			b.logf("substitute %d/%d", i+1, rounds)
			return b.substituteEach(ctx, n, ngx, srv, top, what, &c.SmallStatic, &c.SmallCached)
		})
		if err != nil {
			return err
		}
	}
	return nil
}
