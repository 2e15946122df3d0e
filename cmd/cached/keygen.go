package main

import (
	"crypto/rand"
	"flag"
	"fmt"
	"io"

	"github.com/nix-cached/cached/signing"
)

// runKeygen writes a signing key pair exactly as
// `nix-store --generate-binary-cache-key NAME SECRET_FILE PUBLIC_FILE` does.
func runKeygen(args []string, stdout io.Writer) error {
	const usage = "cached keygen NAME SECRET_FILE PUBLIC_FILE"
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	usageFlags(fs, "usage: "+usage+`

Makes a signing key pair, as nix-store --generate-binary-cache-key does:
NAME (such as cache.example.com-1) names the key in signatures, the
secret key goes to SECRET_FILE (mode 0600), the public key, which clients
list in trusted-public-keys, to PUBLIC_FILE.`)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if args = fs.Args(); len(args) != 3 {
		return fmt.Errorf("%w: %s", errUsage, usage)
	}
	sk, err := signing.GenerateKey(args[0], rand.Reader)
	if err != nil {
		return err
	}
	if err := signing.WriteKeyFiles(sk, args[1], args[2]); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "public key: %s\n", sk.Public())
	return nil
}
