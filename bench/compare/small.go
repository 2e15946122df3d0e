package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/nix-cached/cached/internal/nixtest"
)

// measureSmall substitutes a closure of n small paths from nginx (a
// static cache written by nix copy --to file://) and from srv with every
// client, alternating round after round: where per-path costs (a narinfo
// and a NAR request each, and the client's own work) dominate rather than
// bytes. The host's client builds and pushes it; substituting into an
// empty store needs nothing in the other clients' stores.
func (b *bench) measureSmall(ctx context.Context, srv *server, n, rounds int, staticKey string, r *results) error {
	b.logf("building a closure of %d small paths with nix-build", n+1)
	top, closure, err := b.buildClosure(ctx, n, fmt.Sprint("small-", time.Now().UnixNano()))
	if err != nil {
		return err
	}
	static := filepath.Join(b.work, "static-small")
	if _, err := b.pushTo(ctx, b.host, "file://"+static+"?compression=zstd&secret-key="+staticKey, top); err != nil {
		return err
	}
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
	for i := range rounds {
		err := b.eachClient(r, func(n *nixtest.Nix, c *clientRuns) error {
			b.logf("substitute %d/%d", i+1, rounds)
			return b.substituteEach(ctx, n, ngx, srv, top, fmt.Sprintf("%d small paths", len(closure)), &c.SmallStatic, &c.SmallCached)
		})
		if err != nil {
			return err
		}
	}
	return nil
}
