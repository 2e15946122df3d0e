package signing

import (
	"crypto/ed25519"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// maxKeyFile bounds how much of a key file is read; real ones are ~100 bytes.
const maxKeyFile = 64 << 10

// WriteKeyFiles writes sk to secretPath (mode 0600) and its public half to
// publicPath (mode 0644), without trailing newlines, as
// `nix-store --generate-binary-cache-key` does. It refuses to overwrite an
// existing file, and leaves neither file behind when it fails.
func WriteKeyFiles(sk SecretKey, secretPath, publicPath string) error {
	if checkName(sk.name) != nil || len(sk.key) != ed25519.PrivateKeySize {
		return fmt.Errorf("%w: writing key files: no usable secret key", ErrInvalidKey)
	}
	for _, p := range []string{secretPath, publicPath} {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("signing: writing key file %s: %w", p, fs.ErrExist)
		}
	}
	if err := writeNew(secretPath, sk.String(), 0o600); err != nil {
		return fmt.Errorf("signing: writing secret key file: %w", err)
	}
	if err := writeNew(publicPath, sk.Public().String(), 0o644); err != nil {
		os.Remove(secretPath) //nolint:errcheck // best effort; the first error matters
		return fmt.Errorf("signing: writing public key file: %w", err)
	}
	return nil
}

// writeNew creates path, which must not exist, with exactly the given mode
// and contents, and syncs it. On failure it removes what it created.
func writeNew(path, contents string, mode os.FileMode) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err // *PathError: names the op and the path
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = cerr
		}
		if err != nil {
			os.Remove(path) //nolint:errcheck // best effort cleanup
		}
	}()
	if err := f.Chmod(mode); err != nil { // independent of the umask
		return err
	}
	if _, err := f.WriteString(contents); err != nil {
		return err
	}
	return f.Sync()
}

// LoadSecretKeyFile reads and parses a secret key file.
func LoadSecretKeyFile(path string) (SecretKey, error) {
	s, err := readKeyFile(path)
	if err != nil {
		return SecretKey{}, err
	}
	k, err := parseSecretKey(s)
	if err != nil {
		return SecretKey{}, fmt.Errorf("%w: secret key file %s: %v", ErrInvalidKey, path, err)
	}
	return k, nil
}

// LoadPublicKeyFile reads and parses a public key file.
func LoadPublicKeyFile(path string) (PublicKey, error) {
	s, err := readKeyFile(path)
	if err != nil {
		return PublicKey{}, err
	}
	k, err := parsePublicKey(s)
	if err != nil {
		return PublicKey{}, fmt.Errorf("%w: public key file %s: %v", ErrInvalidKey, path, err)
	}
	return k, nil
}

// readKeyFile returns the contents of a small key file.
func readKeyFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("signing: reading key file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return "", fmt.Errorf("signing: reading key file: %w", err)
	}
	if len(b) > maxKeyFile {
		return "", fmt.Errorf("%w: key file %s is larger than %d bytes", ErrInvalidKey, path, maxKeyFile)
	}
	return string(b), nil
}
