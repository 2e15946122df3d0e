// Package tlscert serves a TLS certificate and key from files, and picks
// up new ones when the files change, as cert-manager, certbot or an
// operator replace them, without a restart.
package tlscert

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// CheckEvery is how often, at most, the files are looked at again: a
// handshake more than this long after the last look stats both files,
// and reloads them if either changed.
const CheckEvery = time.Second

// Reloader holds the certificate of a certificate file and a key file.
type Reloader struct {
	certFile, keyFile string
	log               *slog.Logger
	now               func() time.Time

	mu      sync.Mutex
	cert    *tls.Certificate
	stamps  [2]os.FileInfo // of the files the certificate was read from
	checked time.Time
	failed  [2]os.FileInfo // the files a reload last failed on (logged once)
}

// New reads the certificate (PEM, the leaf first, then its chain) and its
// private key (PEM); it fails unless they make a valid pair.
func New(certFile, keyFile string, log *slog.Logger) (*Reloader, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("tlscert: a certificate file and a key file are both needed")
	}
	if log == nil {
		log = slog.Default()
	}
	r := &Reloader{certFile: certFile, keyFile: keyFile, log: log, now: time.Now}
	stamps, err := r.stat()
	if err != nil {
		return nil, err
	}
	cert, err := r.load()
	if err != nil {
		return nil, err
	}
	r.cert, r.stamps, r.checked = cert, stamps, r.now()
	return r, nil
}

// Config returns a server TLS configuration (TLS 1.2 and later) that
// serves the current certificate. net/http adds HTTP/2 to it.
func (r *Reloader) Config() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate}
}

// Leaf returns the certificate served now.
func (r *Reloader) Leaf() *x509.Certificate {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cert.Leaf
}

// GetCertificate returns the current certificate, reloading the files
// first if they changed since it was read. A reload that fails (a
// half-written file, a key that does not match) keeps the previous
// certificate, is logged once, and is tried again on a later handshake.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); now.Sub(r.checked) >= CheckEvery {
		r.checked = now
		r.reload()
	}
	return r.cert, nil
}

// reload reads the files again if they changed; r.mu is held.
func (r *Reloader) reload() {
	stamps, err := r.stat()
	if err != nil {
		r.log.Warn("tls: cannot check the certificate files; serving the certificate loaded before", "err", err)
		return
	}
	if same(stamps, r.stamps) || same(stamps, r.failed) {
		return
	}
	cert, err := r.load()
	if err != nil {
		r.failed = stamps
		r.log.Warn("tls: the changed certificate files do not load; serving the certificate loaded before", "err", err)
		return
	}
	r.cert, r.stamps, r.failed = cert, stamps, [2]os.FileInfo{}
	r.log.Info("tls: certificate reloaded", "subject", cert.Leaf.Subject.String(),
		"not_after", cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
}

func (r *Reloader) stat() ([2]os.FileInfo, error) {
	var out [2]os.FileInfo
	for i, f := range []string{r.certFile, r.keyFile} {
		fi, err := os.Stat(f) // through symlinks, as Kubernetes mounts Secrets
		if err != nil {
			return out, fmt.Errorf("tlscert: %w", err)
		}
		out[i] = fi
	}
	return out, nil
}

func (r *Reloader) load() (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return nil, fmt.Errorf("tlscert: %s and %s: %w", r.certFile, r.keyFile, err)
	}
	return &cert, nil // Leaf is set by LoadX509KeyPair
}

// same reports whether both files are the ones stamped, unchanged.
func same(a, b [2]os.FileInfo) bool {
	for i := range a {
		if a[i] == nil || b[i] == nil || !os.SameFile(a[i], b[i]) ||
			!a[i].ModTime().Equal(b[i].ModTime()) || a[i].Size() != b[i].Size() {
			return false
		}
	}
	return true
}
