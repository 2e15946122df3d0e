package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"
)

// measureSmall substitutes a closure of n small paths from nginx (a
// static cache written by nix copy --to file://) and from srv, alternating
// round after round: where per-path costs (a narinfo and a NAR request
// each, and the client's own work) dominate rather than bytes.
func (b *bench) measureSmall(ctx context.Context, srv *server, n, rounds int, staticKey string, r *results) error {
	b.logf("building a closure of %d small paths with nix-build", n+1)
	top, closure, err := b.buildClosure(ctx, n, fmt.Sprint("small-", time.Now().UnixNano()))
	if err != nil {
		return err
	}
	static := filepath.Join(b.work, "static-small")
	if _, err := b.pushTo(ctx, "file://"+static+"?compression=zstd&secret-key="+staticKey, top); err != nil {
		return err
	}
	if err := b.trustCached(ctx, srv); err != nil {
		return err
	}
	if _, err := b.pushTo(ctx, srv.URL+"?compression=zstd", top); err != nil {
		return err
	}
	ngx, err := b.startNginx(ctx, static)
	if err != nil {
		return err
	}
	defer ngx.stop()
	r.SmallPaths = len(closure)
	for i := range rounds {
		for _, s := range []*server{ngx, srv} {
			b.logf("substitute %d/%d: %d small paths from %s", i+1, rounds, len(closure), s.name)
			took, err := b.substituteFrom(ctx, s.URL, top)
			if err != nil {
				return err
			}
			if s == ngx {
				r.SmallStatic = append(r.SmallStatic, took)
			} else {
				r.SmallCached = append(r.SmallCached, took)
			}
		}
	}
	return nil
}
