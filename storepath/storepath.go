// Package storepath parses, validates and computes Nix store paths,
// "<storeDir>/<32 nix32 chars>-<name>".
package storepath

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/nix-cached/cached/nixbase32"
)

// DefaultStoreDir is the store directory of a standard Nix installation.
const DefaultStoreDir = "/nix/store"

// HashLen is the length of a store path's hash part in characters.
const HashLen = 32

// MaxNameLen is the longest name Nix accepts.
const MaxNameLen = 211

// ErrInvalid is returned for a malformed store path, name or store dir.
var ErrInvalid = errors.New("storepath: invalid store path")

// Path is a store path without its store dir: a hash part and a name.
type Path struct {
	Hash string // 32 nix32 characters
	Name string
}

// ValidateHashPart checks that s is 32 characters of the nix32 alphabet.
func ValidateHashPart(s string) error {
	if len(s) != HashLen {
		return fmt.Errorf("%w: hash part %q is %d characters, want %d", ErrInvalid, clip(s), len(s), HashLen)
	}
	if err := nixbase32.ValidateString(s); err != nil {
		return fmt.Errorf("%w: hash part %q: %w", ErrInvalid, s, err)
	}
	return nil
}

// ValidateName checks a store path name as the newest Nix does: 1 to 211
// characters of [A-Za-z0-9+\-._?=], neither "." nor "..", and not starting
// with ".-" or "..-".
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty name", ErrInvalid)
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("%w: name %q is longer than %d characters", ErrInvalid, clip(name), MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		if !nameChar[name[i]] {
			return fmt.Errorf("%w: name %q contains illegal character %q", ErrInvalid, clip(name), name[i])
		}
	}
	if name == "." || name == ".." || strings.HasPrefix(name, ".-") || strings.HasPrefix(name, "..-") {
		return fmt.Errorf("%w: name %q is not valid", ErrInvalid, name)
	}
	return nil
}

// nameChar marks the bytes allowed in a store path name.
var nameChar = func() (m [256]bool) {
	for c := '0'; c <= '9'; c++ {
		m[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		m[c], m[c-'a'+'A'] = true, true
	}
	for _, c := range "+-._?=" {
		m[c] = true
	}
	return m
}()

// ValidateStoreDir checks that dir is an absolute, clean path other than
// "/", without a trailing slash.
func ValidateStoreDir(dir string) error {
	if dir == "" || dir[0] != '/' || dir == "/" || path.Clean(dir) != dir {
		return fmt.Errorf("%w: store dir %q is not an absolute clean path", ErrInvalid, clip(dir))
	}
	return nil
}

// ParseBase parses a store path basename, "<hash>-<name>". The returned
// fields share memory with base.
func ParseBase(base string) (Path, error) {
	if len(base) < HashLen+2 || base[HashLen] != '-' {
		return Path{}, fmt.Errorf("%w: %q is not <hash>-<name>", ErrInvalid, clip(base))
	}
	p := Path{Hash: base[:HashLen], Name: base[HashLen+1:]}
	if err := ValidateHashPart(p.Hash); err != nil {
		return Path{}, err
	}
	if err := ValidateName(p.Name); err != nil {
		return Path{}, err
	}
	return p, nil
}

// Parse parses an absolute store path, which must be exactly
// storeDir + "/" + basename. It does not validate storeDir.
func Parse(storeDir, abs string) (Path, error) {
	base, ok := strings.CutPrefix(abs, storeDir)
	if !ok || base == "" || base[0] != '/' {
		return Path{}, fmt.Errorf("%w: %q is not in the store %q", ErrInvalid, clip(abs), storeDir)
	}
	return ParseBase(base[1:])
}

// Base returns the basename "<hash>-<name>".
func (p Path) Base() string {
	return p.Hash + "-" + p.Name
}

// Absolute returns the full path of p in storeDir.
func (p Path) Absolute(storeDir string) string {
	return storeDir + "/" + p.Hash + "-" + p.Name
}

// String returns the basename, as Base does.
func (p Path) String() string {
	return p.Base()
}

// clip shortens s for an error message.
func clip(s string) string {
	const max = 80
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
