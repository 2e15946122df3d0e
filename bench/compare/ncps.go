package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/nix-cached/cached/internal/nixtest"
)

// ncps (github.com/kalbasit/ncps) is a peer measured when -ncps names its
// binary: a pull-through proxy for Nix binary caches that also takes
// pushes (PUT under /upload). It is built elsewhere, from its own
// repository; nothing of it is part of this one.

// ncpsConfig is the configuration file of one ncps: its own SQLite
// database and local storage under dir, one upstream (nginx serving a
// static cache, signed with the key given), PUT allowed, and nothing sent
// anywhere (no anonymous usage reports, no OpenTelemetry). Its signing
// key is made on first start under the hostname, which is not 127.0.0.1
// so that Nix, which keeps one key per name, trusts it beside cached's.
const ncpsConfig = `log:
  level: warn
analytics:
  reporting:
    enabled: false
opentelemetry:
  enabled: false
prometheus:
  enabled: false
cache:
  hostname: ncps-bench
  allow-put-verb: true
  allow-delete-verb: false
  database-url: "sqlite:%[1]s/db.sqlite"
  storage:
    local: "%[1]s/storage"
  temp-path: "%[1]s/tmp"
  netrc-file: "%[1]s/netrc"
  upstream:
    urls:
      - "%[2]s"
    public-keys:
      - "%[3]s"
server:
  addr: "127.0.0.1:%[4]d"
`

// startNcps starts ncps on a new data directory with upstream as its
// only upstream cache, and waits until it serves.
func (b *bench) startNcps(ctx context.Context, dir, upstream string) (*server, error) {
	for _, sub := range []string{"storage", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "netrc"), nil, 0o600); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(ncpsConfig, dir, upstream, b.trusted[0], port)), 0o644); err != nil {
		return nil, err
	}
	logf, err := os.Create(dir + ".log")
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	// ncps creates its schema only when told to (as its Docker and NixOS
	// setups do before serving).
	migrate := exec.CommandContext(ctx, b.ncps, "--config", conf, "migrate", "up",
		"--cache-database-url", "sqlite:"+filepath.Join(dir, "db.sqlite"))
	migrate.Stdout, migrate.Stderr = logf, logf
	if err := migrate.Run(); err != nil {
		return nil, fmt.Errorf("ncps migrate up: %w (log: %s.log)", err, dir)
	}
	cmd := exec.CommandContext(ctx, b.ncps, "--config", conf, "serve")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("ncps: %w", err)
	}
	s := &server{name: "ncps", URL: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd, dir: dir, pubPath: "/pubkey"}
	s.watch(nil)
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		select {
		case err := <-s.done:
			return nil, fmt.Errorf("ncps serve exited before serving: %v (log: %s.log)", err, dir)
		default:
		}
		if st, _, err := fetch(ctx, s.URL+"/nix-cache-info"); err == nil && st == http.StatusOK {
			return s, nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	s.stop()
	return nil, fmt.Errorf("ncps did not serve within a minute (log: %s.log)", dir)
}

// ncpsVersion is what `ncps --version` prints, without the program's name.
func (b *bench) ncpsVersion(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, b.ncps, "--version").CombinedOutput()
	if err != nil {
		return "unknown"
	}
	return strings.TrimPrefix(strings.TrimSpace(string(out)), "ncps version ")
}

// pullNcps substitutes top with client n through a new ncps whose
// upstream is ngx, twice: the first fetch goes upstream, the second
// should come from ncps's own storage.
func (b *bench) pullNcps(ctx context.Context, n *nixtest.Nix, c *clientRuns, ngx *server, dir, top string) error {
	p, err := b.startNcps(ctx, dir, ngx.URL)
	if err != nil {
		return err
	}
	defer p.stop()
	for j, into := range []*[]time.Duration{&c.NcpsFirst, &c.NcpsSecond} {
		if err := b.trust(ctx, p); err != nil {
			return err
		}
		took, err := b.substituteFrom(ctx, n, p.URL, top)
		if err != nil {
			return fmt.Errorf("through ncps, fetch %d: %w", j+1, err)
		}
		*into = append(*into, took)
	}
	return nil
}

// measureNcpsHits loads ncps with narinfo hits, alternating with nginx
// as measureServing does for cached: an ncps whose upstream is ngx, after
// the host's client has substituted the closure through it once (so that
// every narinfo is in its database).
func (b *bench) measureNcpsHits(ctx context.Context, r *results, ngx *server, top string, d time.Duration) error {
	p, err := b.startNcps(ctx, filepath.Join(b.work, "ncps-hits"), ngx.URL)
	if err != nil {
		return err
	}
	defer p.stop()
	if err := b.trust(ctx, p); err != nil {
		return err
	}
	if _, err := b.substituteFrom(ctx, b.host, p.URL, top); err != nil {
		return fmt.Errorf("warming ncps: %w", err)
	}
	hitFile := filepath.Join(b.work, "hits") // written by measureServing
	r.NcpsHits = map[int]compared{}
	for _, conns := range b.conns {
		pair, err := b.alternate(ctx, ngx, p, func(s *server) (load, error) {
			b.logf("narinfo hits over %d connections: %s", conns, s.name)
			l, err := b.wrk(ctx, s.URL, conns, d, hitFile)
			if err == nil && (l.NotOK > 0 || l.Errors > 0) {
				err = fmt.Errorf("narinfo hits from %s: %d of %d answers not OK, %d errors", s.name, l.NotOK, l.Requests, l.Errors)
			}
			return l, err
		})
		if err != nil {
			return err
		}
		r.NcpsHits[conns] = pair
	}
	return nil
}
