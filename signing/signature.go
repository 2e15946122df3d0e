package signing

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"strings"
)

// Signature is a parsed detached signature, as found on a narinfo Sig line.
type Signature struct {
	KeyName string
	Bytes   []byte
}

// ParseSignature parses "name:base64(64-byte Ed25519 signature)".
func ParseSignature(s string) (Signature, error) {
	name, b64, ok := strings.Cut(s, ":")
	if !ok {
		return Signature{}, fmt.Errorf("%w: no ':' between key name and signature", ErrInvalidSignature)
	}
	if err := checkName(name); err != nil {
		return Signature{}, fmt.Errorf("%w: %v", ErrInvalidSignature, err)
	}
	raw, err := decodeSig(name, b64)
	if err != nil {
		return Signature{}, err
	}
	return Signature{KeyName: name, Bytes: raw}, nil
}

// decodeSig decodes the base64 half of a signature by key name and checks
// its length.
func decodeSig(name, b64 string) ([]byte, error) {
	raw, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("%w: by key %q: not valid base64", ErrInvalidSignature, name)
	}
	if len(raw) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: by key %q: %d bytes, want %d", ErrInvalidSignature, name, len(raw), ed25519.SignatureSize)
	}
	return raw, nil
}

// String returns the signature as "name:base64(sig)".
func (s Signature) String() string {
	return s.KeyName + ":" + base64.StdEncoding.EncodeToString(s.Bytes)
}

// VerifyAny reports whether at least one of sigs is a valid signature of
// fingerprint by a key in keys with the same name, as Nix checks a path.
// Signatures naming no key in keys are skipped whatever their form; one that
// names a known key but is not 64 bytes of base64 is an error wrapping
// ErrInvalidSignature, even when another signature is valid (Nix refuses the
// path in that case too).
func VerifyAny(keys []PublicKey, fingerprint []byte, sigs []string) (bool, error) {
	good := false
	for _, sig := range sigs {
		name, b64, ok := strings.Cut(sig, ":")
		if !ok || name == "" {
			continue // Nix looks up the empty name, which no key has.
		}
		var raw []byte
		for _, k := range keys {
			if k.name != name {
				continue
			}
			if raw == nil {
				var err error
				if raw, err = decodeSig(name, b64); err != nil {
					return false, err
				}
			}
			if !good && k.verify(fingerprint, raw) {
				good = true
			}
		}
	}
	return good, nil
}
