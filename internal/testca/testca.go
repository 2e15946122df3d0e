// Package testca is a certificate authority for tests: it issues server
// certificates for 127.0.0.1 and localhost, and writes them, their keys
// and its own certificate as PEM files.
package testca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// CA is a test certificate authority, valid for a day.
type CA struct {
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	serial atomic.Int64
}

// New makes a CA.
func New(t testing.TB) *CA {
	t.Helper()
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// NewCA is New for programs (the benchmarks): it returns its error.
func NewCA() (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cached test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	ca := &CA{cert: cert, key: key}
	ca.serial.Store(1)
	return ca, nil
}

// Pool returns a certificate pool holding the CA alone.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// WriteCA writes the CA's certificate to file.
func (ca *CA) WriteCA(t testing.TB, file string) {
	t.Helper()
	if err := ca.WriteCAFile(file); err != nil {
		t.Fatal(err)
	}
}

// WriteCAFile is WriteCA for programs.
func (ca *CA) WriteCAFile(file string) error {
	return write(file, &pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})
}

// Issue writes a new server certificate for 127.0.0.1 and localhost to
// certFile, and its key to keyFile, and returns its serial number (each
// certificate gets a new one).
func (ca *CA) Issue(t testing.TB, certFile, keyFile string) *big.Int {
	t.Helper()
	serial, err := ca.IssueFiles(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return serial
}

// IssueFiles is Issue for programs.
func (ca *CA) IssueFiles(certFile, keyFile string) (*big.Int, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	serial := big.NewInt(ca.serial.Add(1))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := write(certFile, &pem.Block{Type: "CERTIFICATE", Bytes: der}); err != nil {
		return nil, err
	}
	return serial, write(keyFile, &pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

// write writes a PEM file through a temporary file and a rename, as
// certificate managers replace files.
func write(file string, b *pem.Block) error {
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(b), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}
