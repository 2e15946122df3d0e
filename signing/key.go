// Package signing reads, writes and uses the Ed25519 keys and detached
// signatures of Nix binary caches ("name:base64" strings, as written by
// `nix-store --generate-binary-cache-key`).
package signing

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"unicode"
)

// ErrInvalidKey is returned for a malformed key or key name.
var ErrInvalidKey = errors.New("signing: invalid key")

// ErrInvalidSignature is returned for a malformed signature.
var ErrInvalidSignature = errors.New("signing: invalid signature")

// SecretKey is a named Ed25519 private key that signs store path fingerprints.
type SecretKey struct {
	name string
	key  ed25519.PrivateKey
}

// PublicKey is a named Ed25519 public key that verifies signatures.
type PublicKey struct {
	name string
	key  ed25519.PublicKey
}

// GenerateKey makes a new secret key called name from 32 bytes read from
// rand, or from a secure source when rand is nil.
func GenerateKey(name string, rand io.Reader) (SecretKey, error) {
	if err := checkName(name); err != nil {
		return SecretKey{}, fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	_, priv, err := ed25519.GenerateKey(rand)
	if err != nil {
		return SecretKey{}, fmt.Errorf("signing: generating key %q: %w", name, err)
	}
	return SecretKey{name: name, key: priv}, nil
}

// ParseSecretKey parses the contents of a secret key file,
// "name:base64(seed ‖ public key)". Surrounding whitespace is ignored.
// Errors never quote the key material.
func ParseSecretKey(s string) (SecretKey, error) {
	k, err := parseSecretKey(s)
	if err != nil {
		return SecretKey{}, fmt.Errorf("%w: secret key: %v", ErrInvalidKey, err)
	}
	return k, nil
}

// ParsePublicKey parses the contents of a public key file, "name:base64(key)".
// Surrounding whitespace is ignored.
func ParsePublicKey(s string) (PublicKey, error) {
	k, err := parsePublicKey(s)
	if err != nil {
		return PublicKey{}, fmt.Errorf("%w: public key: %v", ErrInvalidKey, err)
	}
	return k, nil
}

// parseSecretKey is ParseSecretKey with errors that say only what is wrong.
func parseSecretKey(s string) (SecretKey, error) {
	name, raw, err := splitKey(s, ed25519.PrivateKeySize)
	if err != nil {
		return SecretKey{}, err
	}
	priv := ed25519.NewKeyFromSeed(raw[:ed25519.SeedSize])
	if !priv.Public().(ed25519.PublicKey).Equal(ed25519.PublicKey(raw[ed25519.SeedSize:])) {
		return SecretKey{}, fmt.Errorf("%q: public half does not match the seed", name)
	}
	return SecretKey{name: name, key: priv}, nil
}

// parsePublicKey is ParsePublicKey with errors that say only what is wrong.
func parsePublicKey(s string) (PublicKey, error) {
	name, raw, err := splitKey(s, ed25519.PublicKeySize)
	if err != nil {
		return PublicKey{}, err
	}
	return PublicKey{name: name, key: ed25519.PublicKey(raw)}, nil
}

// splitKey splits "name:base64" and decodes the base64 part, which must be
// size bytes long. Its errors name the key but never quote its material.
func splitKey(s string, size int) (string, []byte, error) {
	name, b64, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return "", nil, errors.New("no ':' between name and key")
	}
	if err := checkName(name); err != nil {
		return "", nil, err
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil {
		return "", nil, fmt.Errorf("%q: key is not valid base64", name)
	}
	if len(raw) != size {
		return "", nil, fmt.Errorf("%q: key is %d bytes, want %d", name, len(raw), size)
	}
	return name, raw, nil
}

// checkName checks that name can name a key: non-empty, no ':' and no
// whitespace.
func checkName(name string) error {
	if name == "" {
		return errors.New("empty key name")
	}
	if strings.ContainsFunc(name, func(r rune) bool { return r == ':' || unicode.IsSpace(r) }) {
		return fmt.Errorf("key name %q contains ':' or whitespace", name)
	}
	return nil
}

// Name returns the key's name.
func (k SecretKey) Name() string { return k.name }

// Public returns the public half of the key.
func (k SecretKey) Public() PublicKey {
	if len(k.key) != ed25519.PrivateKeySize {
		return PublicKey{name: k.name}
	}
	return PublicKey{name: k.name, key: k.key.Public().(ed25519.PublicKey)}
}

// String returns the secret key file contents, without a trailing newline.
func (k SecretKey) String() string {
	return k.name + ":" + base64.StdEncoding.EncodeToString(k.key)
}

// LogValue names the key in log/slog output without revealing it.
func (k SecretKey) LogValue() slog.Value {
	return slog.StringValue(k.name + ":<secret>")
}

// Sign returns the signature "name:base64(sig)" of fingerprint. It panics on
// the zero SecretKey, which holds no key; use GenerateKey or ParseSecretKey.
func (k SecretKey) Sign(fingerprint []byte) string {
	return Signature{KeyName: k.name, Bytes: ed25519.Sign(k.key, fingerprint)}.String()
}

// Name returns the key's name.
func (k PublicKey) Name() string { return k.name }

// String returns the public key file contents, without a trailing newline.
func (k PublicKey) String() string {
	return k.name + ":" + base64.StdEncoding.EncodeToString(k.key)
}

// Equal reports whether k and o have the same name and key.
func (k PublicKey) Equal(o PublicKey) bool {
	return k.name == o.name && k.key.Equal(o.key)
}

// Verify reports whether sig is a valid signature of fingerprint by this key.
// A signature under another key name, or a malformed one, is not valid.
func (k PublicKey) Verify(fingerprint []byte, sig string) bool {
	s, err := ParseSignature(sig)
	if err != nil || s.KeyName != k.name {
		return false
	}
	return k.verify(fingerprint, s.Bytes)
}

// verify checks raw signature bytes; it is false for the zero PublicKey.
func (k PublicKey) verify(fingerprint, sig []byte) bool {
	if len(k.key) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
		return false
	}
	return ed25519.Verify(k.key, fingerprint, sig)
}
