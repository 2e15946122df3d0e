// Package narinfo parses and writes .narinfo files, the metadata a Nix
// binary cache serves for each store path, and computes the fingerprint
// their signatures cover.
package narinfo

import (
	"errors"
	"fmt"
	"strings"

	"github.com/nix-cached/cached/nixhash"
	"github.com/nix-cached/cached/storepath"
)

// ErrInvalid is returned for a narinfo that is malformed or misses a
// required field, and for one that cannot be fingerprinted.
var ErrInvalid = errors.New("narinfo: invalid narinfo")

// NarInfo is the content of a .narinfo file.
type NarInfo struct {
	StorePath   string       // absolute
	URL         string       // of the (compressed) NAR, relative to the cache
	Compression string       // "" if the field is absent (Nix then means bzip2)
	FileHash    nixhash.Hash // of the file behind URL; zero if absent
	FileSize    uint64       // of the file behind URL; 0 if absent
	NarHash     nixhash.Hash // of the uncompressed NAR
	NarSize     uint64       // of the uncompressed NAR
	References  []string     // basenames "<hash>-<name>", in file order
	Deriver     string       // basename; "" when absent or "unknown-deriver"
	System      string       // obsolete, written by Nix 2.9 and older
	Sigs        []string     // "name:base64", in file order
	CA          string       // content address, such as "fixed:r:sha256:<nix32>"
}

// HashPart returns the hash part of StorePath, or "" if StorePath is not a
// valid absolute store path.
func (ni *NarInfo) HashPart() string {
	_, p, err := splitStorePath(ni.StorePath)
	if err != nil {
		return ""
	}
	return p.Hash
}

// splitStorePath splits an absolute store path into its store dir and its
// parsed basename, validating both.
func splitStorePath(abs string) (string, storepath.Path, error) {
	i := strings.LastIndexByte(abs, '/')
	if i < 0 {
		return "", storepath.Path{}, fmt.Errorf("%w: %q is not an absolute path", storepath.ErrInvalid, clip(abs))
	}
	dir := abs[:i]
	if err := storepath.ValidateStoreDir(dir); err != nil {
		return "", storepath.Path{}, err
	}
	p, err := storepath.ParseBase(abs[i+1:])
	if err != nil {
		return "", storepath.Path{}, err
	}
	return dir, p, nil
}

// clip shortens s for an error message.
func clip(s string) string {
	const max = 100
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
