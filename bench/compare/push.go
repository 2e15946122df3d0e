package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/nix-cached/cached/internal/nixtest"
)

// measurePush pushes the closure with every client, timing each round
// into empty caches: a static `file://` cache, nginx's WebDAV PUT,
// cached, a cached whose upstream (nginx serving an empty static cache)
// lacks every path (what pull-through costs a push), and ncps when
// given. It returns the static cache and the cached of the last push,
// the ones served next (both of the same client, so with the same
// signatures).
func (b *bench) measurePush(ctx context.Context, r *results, top, staticKey string, rounds int) (string, *server, error) {
	emptyDir := filepath.Join(b.work, "empty-upstream")
	if err := os.MkdirAll(emptyDir, 0o755); err != nil {
		return "", nil, err
	}
	if err := os.WriteFile(filepath.Join(emptyDir, "nix-cache-info"), []byte("StoreDir: /nix/store\n"), 0o644); err != nil {
		return "", nil, err
	}
	empty, err := b.startNginx(ctx, emptyDir)
	if err != nil {
		return "", nil, err
	}
	defer empty.stop()
	var static string
	var srv *server
	for i := range rounds {
		err := b.eachClient(r, func(n *nixtest.Nix, c *clientRuns) error {
			tag := fmt.Sprintf("%d-%s", i, n.Name)
			static = filepath.Join(b.work, "static-"+tag)
			b.logf("push %d/%d, Nix %s: nix copy --to file://", i+1, rounds, n.Version)
			took, err := b.pushTo(ctx, n, "file://"+static+"?compression=zstd&secret-key="+staticKey, top)
			if err != nil {
				return err
			}
			c.PushStatic = append(c.PushStatic, took)
			b.logf("push %d/%d, Nix %s: nix copy --to nginx WebDAV", i+1, rounds, n.Version)
			if took, err = b.pushToDAV(ctx, n, filepath.Join(b.work, "dav-"+tag), top); err != nil {
				return err
			}
			c.PushDAV = append(c.PushDAV, took)
			srv.stop()
			if srv, err = b.startCached(ctx, filepath.Join(b.work, "cached-"+tag)); err != nil {
				return err
			}
			if err := b.trust(ctx, srv); err != nil {
				return err
			}
			b.logf("push %d/%d, Nix %s: nix copy --to cached", i+1, rounds, n.Version)
			if took, err = b.pushTo(ctx, n, srv.URL+"?compression=zstd", top); err != nil {
				return err
			}
			c.PushCached = append(c.PushCached, took)

			b.logf("push %d/%d, Nix %s: nix copy --to cached with an upstream", i+1, rounds, n.Version)
			up, err := b.startCached(ctx, filepath.Join(b.work, "cached-up-"+tag),
				"--upstream", empty.URL, "--upstream-key", b.trusted[0])
			if err != nil {
				return err
			}
			if err = b.trust(ctx, up); err == nil {
				took, err = b.pushTo(ctx, n, up.URL+"?compression=zstd", top)
			}
			up.stop()
			if err != nil {
				return err
			}
			c.PushUpstream = append(c.PushUpstream, took)

			if b.ncps != "" {
				b.logf("push %d/%d, Nix %s: nix copy --to ncps", i+1, rounds, n.Version)
				p, err := b.startNcps(ctx, filepath.Join(b.work, "ncps-push-"+tag), empty.URL)
				if err != nil {
					return err
				}
				took, err = b.pushTo(ctx, n, p.URL+"/upload?compression=zstd", top)
				p.stop()
				if err != nil {
					return err
				}
				c.PushNcps = append(c.PushNcps, took)
			}
			return nil
		})
		if err != nil {
			srv.stop()
			return "", nil, err
		}
	}
	if err := b.trust(ctx, srv); err != nil {
		srv.stop()
		return "", nil, err
	}
	return static, srv, nil
}
