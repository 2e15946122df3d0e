package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log/slog"

	"github.com/nix-cached/cached/tlscert"
)

// tlsFlags are serve's native TLS settings.
type tlsFlags struct {
	certFile, keyFile string
}

func addTLSFlags(fs *flag.FlagSet) *tlsFlags {
	f := &tlsFlags{}
	fs.StringVar(&f.certFile, "tls-cert-file", "", "serve HTTPS (HTTP/2 and HTTP/1.1) with the certificate chain in this PEM `file`, reloaded when it changes (needs --tls-key-file)")
	fs.StringVar(&f.keyFile, "tls-key-file", "", "the private key (PEM `file`) of --tls-cert-file, reloaded with it")
	return f
}

// config returns the server's TLS configuration; nil without TLS.
func (f *tlsFlags) config(log *slog.Logger) (*tls.Config, error) {
	if f.certFile == "" && f.keyFile == "" {
		return nil, nil
	}
	if f.certFile == "" || f.keyFile == "" {
		return nil, fmt.Errorf("%w: --tls-cert-file and --tls-key-file go together", errUsage)
	}
	r, err := tlscert.New(f.certFile, f.keyFile, log)
	if err != nil {
		return nil, err
	}
	return r.Config(), nil
}
