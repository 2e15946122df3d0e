package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"path/filepath"

	"github.com/nix-cached/cached/internal/nixtest"
	"github.com/nix-cached/cached/internal/testca"
)

// setupTLS makes a test CA and a certificate for 127.0.0.1, and makes
// this program and the Nix commands it runs trust the CA.
func (b *bench) setupTLS() error {
	ca, err := testca.NewCA()
	if err != nil {
		return err
	}
	b.caFile = filepath.Join(b.work, "ca.pem")
	b.certFile, b.keyFile = filepath.Join(b.work, "tls.crt"), filepath.Join(b.work, "tls.key")
	if err := ca.WriteCAFile(b.caFile); err != nil {
		return err
	}
	if _, err := ca.IssueFiles(b.certFile, b.keyFile); err != nil {
		return err
	}
	// This program talks to the servers it started, and to nothing else.
	http.DefaultTransport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: ca.Pool()}
	return nil
}

// measureTLS substitutes the closure over HTTPS, where Nix multiplexes
// its requests over one HTTP/2 connection: from nginx (`http2`) serving
// the static cache, and from cached serving its own data directory with
// --tls-cert-file, with every client, alternating round after round. The
// CA file is under the work directory, so the sid root's client reads it
// too (NIX_SSL_CERT_FILE).
func (b *bench) measureTLS(ctx context.Context, static, cachedData, top string, rounds int, r *results) error {
	if err := b.setupTLS(); err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	// nginx 1.22 (bookworm) takes http2 on the listen line.
	ngx, err := b.runNginx(ctx, "nginx-tls", static, fmt.Sprintf(
		"listen 127.0.0.1:%d ssl http2; ssl_certificate %s; ssl_certificate_key %s;", port, b.certFile, b.keyFile))
	if err != nil {
		return err
	}
	defer ngx.stop()
	ngx.URL = fmt.Sprintf("https://127.0.0.1:%d", port) // its plain HTTP listener is not the one measured
	c, err := b.startCached(ctx, cachedData, "--tls-cert-file", b.certFile, "--tls-key-file", b.keyFile)
	if err != nil {
		return err
	}
	defer c.stop()
	if err := b.trust(ctx, c); err != nil {
		return err
	}
	for i := range rounds {
		err := b.eachClient(r, func(n *nixtest.Nix, cr *clientRuns) error {
			b.logf("substitute %d/%d over HTTPS/HTTP2", i+1, rounds)
			return b.substituteEach(ctx, n, ngx, c, top, "the closure over HTTPS/HTTP2", &cr.TLSStatic, &cr.TLSCached)
		})
		if err != nil {
			return err
		}
	}
	return nil
}
