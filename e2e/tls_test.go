package e2e

import (
	"crypto/tls"
	"math/big"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nix-cached/cached/internal/nixtest"
	"github.com/nix-cached/cached/internal/testca"
	"github.com/nix-cached/cached/tlscert"
)

// TestTLS serves HTTPS natively (--tls-cert-file, --tls-key-file) to Nix
// trusting a test CA (ssl-cert-file, NIX_SSL_CERT_FILE for Nix 2.8): a push with nix copy --to and a
// substitution, over HTTP/2 (the request log says so). The certificate is
// then replaced on disk; the server serves the new one without a restart,
// and Nix goes on substituting.
func TestTLS(t *testing.T) {
	nixtest.Each(t, func(t *testing.T, nix *nixtest.Nix) {
		dir := t.TempDir()
		caFile, certFile, keyFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
		ca := testca.New(t)
		ca.WriteCA(t, caFile)
		first := ca.Issue(t, certFile, keyFile)
		srv := startCache(t, blobBackend{name: "disk"}, "--tls-cert-file", certFile, "--tls-key-file", keyFile)
		if !strings.HasPrefix(srv.URL, "https://") {
			t.Fatalf("serving %s, want https://", srv.URL)
		}
		if got := servedSerial(t, ca, srv.URL); got.Cmp(first) != 0 {
			t.Fatalf("served certificate %v, want %v", got, first)
		}

		// Nix 2.8 has no ssl-cert-file setting; both read NIX_SSL_CERT_FILE.
		client := func(conf ...string) *nixtest.Client {
			c := nix.New(t, append(conf, "ssl-cert-file = "+caFile)...)
			c.Env = append(c.Env, "NIX_SSL_CERT_FILE="+caFile)
			return c
		}
		builder := client("netrc-file = " + netrc(t, srv.Token))
		top := builder.Build(closureExpr("tls-" + nixtest.Nonce()))[0]
		closure := builder.Closure(top)
		want := hashes(t, builder, closure)
		builder.Run("nix", "copy", "--to", srv.URL, top)
		deleteLocally(t, builder, closure)
		substituteBy(t, client("substituters = "+srv.URL, "trusted-public-keys = "+srv.Pub), srv.URL, top, want)

		var h2, h1 int
		for _, l := range srv.requests("GET") {
			if strings.Contains(l, "proto=HTTP/2.0") {
				h2++
			} else {
				h1++
			}
		}
		puts := 0
		for _, l := range srv.requests("PUT") {
			if strings.Contains(l, "proto=HTTP/2.0") {
				puts++
			}
		}
		t.Logf("%s: %d GETs over HTTP/2, %d over HTTP/1.1; %d of %d PUTs over HTTP/2",
			nix.Name, h2, h1, puts, len(srv.requests("PUT")))
		if h2 == 0 || h1 > 0 {
			t.Errorf("%s made %d GETs over HTTP/2 and %d over HTTP/1.1, want all over HTTP/2", nix.Name, h2, h1)
		}

		// cert-manager replaces the files: served without a restart.
		second := ca.Issue(t, certFile, keyFile)
		deadline := time.Now().Add(10 * tlscert.CheckEvery)
		for servedSerial(t, ca, srv.URL).Cmp(second) != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("the replaced certificate is not served after %v", 10*tlscert.CheckEvery)
			}
			time.Sleep(tlscert.CheckEvery / 4)
		}
		deleteLocally(t, builder, closure)
		substituteBy(t, client("substituters = "+srv.URL, "trusted-public-keys = "+srv.Pub), srv.URL, top, want)
	})
}

// servedSerial returns the serial number of the certificate url serves,
// verified against ca, from a new connection.
func servedSerial(t *testing.T, ca *testca.CA, url string) *big.Int {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(url + "/nix-cache-info")
	if err != nil {
		t.Fatalf("GET %s/nix-cache-info: %v", url, err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Proto != "HTTP/2.0" {
		t.Fatalf("GET %s/nix-cache-info: %d over %s", url, resp.StatusCode, resp.Proto)
	}
	return resp.TLS.PeerCertificates[0].SerialNumber
}
