package main

import (
	"context"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/nix-cached/cached/internal/nixtest"
)

// findClients finds the Nix clients to time, as the tests do
// (internal/nixtest): the host's (Debian bookworm's Nix 2.8) and the
// current one in the Debian sid root that scripts/test-deps builds (Nix
// 2.34), which runs under chroot with a /nix/store of its own. Without
// the sid root it says so in one line and measures the host's alone.
func (b *bench) findClients() error {
	found, missing := nixtest.Find()
	for _, n := range found {
		if n.Root == "" {
			b.host = n
		}
	}
	if b.host == nil {
		return fmt.Errorf("the host's Nix client is needed (apt-get install -y nix-bin): %s", strings.Join(missing, "; "))
	}
	b.clients = found
	b.missing = missing
	if len(missing) > 0 {
		log.Printf("measuring with Nix %s only: %s", b.host.Version, strings.Join(missing, "; "))
	}
	return nil
}

// clientRuns are the timings of one Nix client, round after round.
type clientRuns struct {
	Version string // what `nix --version` printed: "2.8.0", "2.34.8"
	Chroot  bool   // the client of the Debian sid root
	// Pushes of the closure, each round into empty caches.
	PushStatic   []time.Duration // file://, served by nginx afterwards
	PushDAV      []time.Duration // nginx's WebDAV PUT: the HTTP floor
	PushCached   []time.Duration
	PushUpstream []time.Duration // into a cached whose upstream lacks the paths
	PushNcps     []time.Duration // into ncps's /upload (-ncps)
	// Substitutions of the closure into empty stores.
	SubstStatic []time.Duration // from nginx
	SubstCached []time.Duration
	PullFirst   []time.Duration // through a pull-through cached (upstream: nginx), first fetch
	PullSecond  []time.Duration // and the second, from its own storage
	NcpsFirst   []time.Duration // the same through ncps (-ncps)
	NcpsSecond  []time.Duration
	// From an upstream behind a delay: straight, and through cached.
	RemoteDirect     []time.Duration
	RemotePrefetch   []time.Duration
	RemoteNoPrefetch []time.Duration // --upstream-prefetch=false
	TLSStatic        []time.Duration // over HTTPS/HTTP2 from nginx
	TLSCached        []time.Duration // and from cached (--tls-cert-file)
	SmallStatic      []time.Duration // the closure of small paths from nginx
	SmallCached      []time.Duration // and from cached
	SmallPushDAV     []time.Duration // the closure of small paths pushed into WebDAV
	SmallPushCached  []time.Duration // and into cached
}

// label names the client in a row of the table.
func (c *clientRuns) label() string { return "Nix " + c.Version }

// eachClient runs f for every client with its timings, in the order the
// clients were found (oldest first): within a round the clients
// alternate, as the servers do.
func (b *bench) eachClient(r *results, f func(n *nixtest.Nix, c *clientRuns) error) error {
	for i, n := range b.clients {
		for len(r.Clients) <= i {
			r.Clients = append(r.Clients, &clientRuns{})
		}
		c := r.Clients[i]
		c.Version, c.Chroot = n.Version, n.Root != ""
		if err := f(n, c); err != nil {
			return fmt.Errorf("Nix %s: %w", n.Version, err)
		}
	}
	return nil
}

// seedClients puts the closure of top into the store of every client
// that has a store of its own (the sid root's), so that it can push it:
// each substitutes it from the signed static cache at URL from, which
// the host's client wrote, so that every client has the same bytes
// (building it again would write other random blobs). The e2e tests
// build in the root instead; a copy is as good here, and faster.
func (b *bench) seedClients(ctx context.Context, top, from string) error {
	for _, n := range b.clients {
		if n.Root == "" {
			continue
		}
		b.logf("copying %s into the store of Nix %s (%s)", top, n.Version, n.Root)
		if _, _, err := b.nixOn(ctx, n, "nix", "copy", "--from", from, top); err != nil {
			return err
		}
	}
	return nil
}

// unseedClients deletes the closure from the stores seedClients filled,
// so that runs do not pile up in the sid root the tests share; a failure
// is only logged.
func (b *bench) unseedClients(ctx context.Context, closure []string) {
	for _, n := range b.clients {
		if n.Root == "" {
			continue
		}
		if _, _, err := b.nixOn(ctx, n, append([]string{"nix-store", "--delete"}, closure...)...); err != nil {
			log.Printf("deleting the closure from the store of Nix %s: %v", n.Version, err)
		}
	}
}
