package tlscert

import (
	"bytes"
	"crypto/tls"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nix-cached/cached/internal/testca"
)

// served returns the serial number of the certificate a TLS client gets
// from url, checking it against the CA, and the protocol negotiated.
func served(t *testing.T, ca *testca.CA, url string) (*big.Int, string) {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	return resp.TLS.PeerCertificates[0].SerialNumber, resp.Proto
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuf) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// A server using the Reloader's configuration serves HTTP/2, picks up a
// replaced certificate without a restart, and keeps serving the previous
// one while the files do not make a valid pair.
func TestReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	ca := testca.New(t)
	first := ca.Issue(t, certFile, keyFile)
	logs := &lockedBuf{}
	r, err := New(certFile, keyFile, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Now()
	var mu sync.Mutex
	r.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func() { mu.Lock(); clock = clock.Add(CheckEvery); mu.Unlock() }

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), TLSConfig: r.Config()}
	go hs.ServeTLS(ln, "", "")
	defer hs.Close()
	url := "https://" + ln.Addr().String()

	if serial, proto := served(t, ca, url); serial.Cmp(first) != 0 || proto != "HTTP/2.0" {
		t.Fatalf("served serial %v over %s, want %v over HTTP/2.0", serial, proto, first)
	}

	second := ca.Issue(t, certFile, keyFile)
	if serial, _ := served(t, ca, url); serial.Cmp(first) != 0 {
		t.Errorf("reloaded within CheckEvery of the last look: serial %v", serial)
	}
	advance()
	if serial, _ := served(t, ca, url); serial.Cmp(second) != 0 {
		t.Fatalf("after a replacement, served serial %v, want %v", serial, second)
	}
	if r.Leaf().SerialNumber.Cmp(second) != 0 {
		t.Errorf("Leaf: serial %v, want %v", r.Leaf().SerialNumber, second)
	}

	// A key that does not match the certificate: the previous pair stays,
	// and the failure is logged once.
	other := filepath.Join(dir, "other")
	ca.Issue(t, other+".crt", other+".key")
	if err := os.Rename(other+".key", keyFile); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		advance()
		if serial, _ := served(t, ca, url); serial.Cmp(second) != 0 {
			t.Fatalf("with a mismatched key, served serial %v, want the previous %v", serial, second)
		}
	}
	if n := strings.Count(logs.String(), "do not load"); n != 1 {
		t.Errorf("the failed reload was logged %d times, want once:\n%s", n, logs)
	}
	// The matching certificate arrives: served.
	if err := os.Rename(other+".crt", certFile); err != nil {
		t.Fatal(err)
	}
	advance()
	if serial, _ := served(t, ca, url); serial.Cmp(second) == 0 {
		t.Errorf("the repaired pair was not loaded")
	}
}

func TestNewRefuses(t *testing.T) {
	dir := t.TempDir()
	ca := testca.New(t)
	ca.Issue(t, filepath.Join(dir, "a.crt"), filepath.Join(dir, "a.key"))
	ca.Issue(t, filepath.Join(dir, "b.crt"), filepath.Join(dir, "b.key"))
	for _, tc := range []struct{ cert, key, want string }{
		{"a.crt", "b.key", "private key does not match"},
		{"a.crt", "missing.key", "no such file"},
		{"a.key", "a.key", "PEM"},
		{"", "a.key", "both needed"},
	} {
		cert := tc.cert
		if cert != "" {
			cert = filepath.Join(dir, cert)
		}
		_, err := New(cert, filepath.Join(dir, tc.key), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%s, %s): %v, want an error with %q", tc.cert, tc.key, err, tc.want)
		}
	}
}
