package main

import (
	"crypto/rand"
	"fmt"
	"io"

	"github.com/nix-cached/cached/signing"
)

// runKeygen writes a signing key pair exactly as
// `nix-store --generate-binary-cache-key NAME SECRET_FILE PUBLIC_FILE` does.
func runKeygen(args []string, stdout io.Writer) error {
	if len(args) != 3 {
		return fmt.Errorf("%w: cached keygen NAME SECRET_FILE PUBLIC_FILE", errUsage)
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
