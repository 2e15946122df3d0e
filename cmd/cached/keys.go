package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"

	"github.com/nix-cached/cached/signing"
)

// keyIDAlphabet is Nix's base32 alphabet (no e, o, u or t), for the random
// part of a generated key's name.
const keyIDAlphabet = "0123456789abcdfghijklmnpqrsvwxyz"

// keyIDLen is the length of that random part: 30 bits.
const keyIDLen = 6

// defaultKeyName names a key generated on a cache's first start
// "<host>-<id>-cached-1": after the host, so that it is readable; with a
// random id, so that two caches on one host do not both sign as the same
// name in trusted-public-keys; ending in -1, the counter to raise when the
// key is rolled over. It is generated once and then read from the key file.
func defaultKeyName(host string, random io.Reader) (string, error) {
	id := make([]byte, keyIDLen)
	if _, err := io.ReadFull(random, id); err != nil {
		return "", fmt.Errorf("generating a key name: %w", err)
	}
	for i, b := range id {
		id[i] = keyIDAlphabet[int(b)%len(keyIDAlphabet)] // 256 is a multiple of 32: uniform
	}
	// A key name must hold no ':' and no white space.
	host = strings.Map(func(r rune) rune {
		if r == ':' || unicode.IsSpace(r) {
			return '-'
		}
		return r
	}, host)
	if host == "" {
		return string(id) + "-cached-1", nil
	}
	return host + "-" + string(id) + "-cached-1", nil
}

// loadOrCreateKeys loads the signing keys; with none configured it uses
// DATA-DIR/signing-key, generating it on the first start of a new cache.
func loadOrCreateKeys(ctx context.Context, f *serveFlags, b *backend, stdout io.Writer) ([]signing.SecretKey, error) {
	paths := f.signingKeys.vals
	if len(paths) == 0 {
		p, err := defaultKey(ctx, f.data.dataDir, b, stdout)
		if err != nil {
			return nil, err
		}
		paths = []string{p}
	}
	keys := make([]signing.SecretKey, 0, len(paths))
	for _, p := range paths {
		sk, err := signing.LoadSecretKeyFile(p)
		if err != nil {
			return nil, err
		}
		keys = append(keys, sk)
	}
	return keys, nil
}

// defaultKey returns the default secret key file, DATA-DIR/signing-key. It
// generates the key pair there when the cache is new; when the cache is not
// new but the secret key is missing it refuses (see keyFiles.refuseNewKey)
// rather than sign with a key that nobody trusts yet.
func defaultKey(ctx context.Context, dataDir string, b *backend, stdout io.Writer) (string, error) {
	k := keyFiles{secret: filepath.Join(dataDir, "signing-key"), catalogExisted: b.catalogExisted}
	k.public = k.secret + ".pub"
	for _, p := range []string{k.secret, k.public} {
		ok, err := exists(p)
		if err != nil {
			return "", fmt.Errorf("signing key: %w", err)
		}
		if !ok {
			k.missing = append(k.missing, p)
		}
	}
	if len(k.missing) == 0 || k.missing[0] != k.secret {
		return k.secret, nil // the public half is not needed to sign
	}
	st, err := b.cat.Stats(ctx, time.Now(), nil)
	if err != nil {
		return "", fmt.Errorf("counting published paths before generating a signing key: %w", err)
	}
	k.paths = st.Paths
	if err := k.refuseNewKey(); err != nil {
		return "", err
	}
	host, _ := os.Hostname() // without a host name, the name is only the id
	name, err := defaultKeyName(host, rand.Reader)
	if err != nil {
		return "", err
	}
	sk, err := signing.GenerateKey(name, rand.Reader)
	if err != nil {
		return "", err
	}
	if err := signing.WriteKeyFiles(sk, k.secret, k.public); err != nil {
		return "", err
	}
	fmt.Fprintf(stdout, "generated signing key %s (public half in %s)\n", k.secret, k.public)
	return k.secret, nil
}

// keyFiles is what serve knows, on a start without --signing-key-file,
// about the default key pair and the cache it signs for.
type keyFiles struct {
	secret, public string   // DATA-DIR/signing-key and DATA-DIR/signing-key.pub
	missing        []string // those of the two files that are not there
	catalogExisted bool     // the catalog predates this start
	paths          int      // published paths in the catalog
}

// refuseNewKey returns why a new default key must not be generated, or nil
// when the cache is new: no published path, no catalog from an earlier
// start, and neither key file. A new key under a generated name would
// leave every published path signed by a key that is gone, and clients
// that trust the old public key would refuse what the new one signs.
func (k keyFiles) refuseNewKey() error {
	var why string
	switch {
	case k.paths == 1:
		why = "the catalog holds 1 published path"
	case k.paths > 1:
		why = fmt.Sprintf("the catalog holds %d published paths", k.paths)
	case k.catalogExisted:
		why = "the cache is not new: its catalog was created by an earlier start"
	case len(k.missing) == 1:
		why = "the other half of the key pair is there"
	default:
		return nil
	}
	missing := make([]string, len(k.missing))
	for i, p := range k.missing {
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
		missing[i] = p
	}
	verb := "is"
	if len(missing) > 1 {
		verb = "are"
	}
	return fmt.Errorf("refusing to generate a new signing key: %s %s missing, but %s; "+
		"restore the key files from a backup, or pass --signing-key-file with a key made on purpose "+
		"(cached keygen NAME FILE FILE.pub) and have clients trust its public half",
		strings.Join(missing, " and "), verb, why)
}
