package storepath

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/nix-cached/cached/nixbase32"
	"github.com/nix-cached/cached/nixhash"
)

// MakeStorePath computes the store path Nix derives from a path type (such
// as "source", "text:<refs>" or "output:out"), the SHA-256 inner digest,
// the store dir and the name. It validates neither storeDir nor name; the
// MakeFixedOutput and MakeText helpers do.
func MakeStorePath(storeDir, typ string, innerDigest [32]byte, name string) Path {
	buf := make([]byte, 0, len(typ)+len(":sha256:")+64+len(storeDir)+len(name)+2)
	buf = append(buf, typ...)
	buf = append(buf, ":sha256:"...)
	buf = hex.AppendEncode(buf, innerDigest[:])
	buf = append(buf, ':')
	buf = append(buf, storeDir...)
	buf = append(buf, ':')
	buf = append(buf, name...)
	sum := sha256.Sum256(buf)
	var folded [20]byte
	for i, b := range sum {
		folded[i%len(folded)] ^= b
	}
	return Path{Hash: nixbase32.EncodeToString(folded[:]), Name: name}
}

// MakeFixedOutput computes the path of a fixed-output, content-addressed
// store object without references: what `nix-store --add` (recursive,
// SHA-256: type "source") or `nix-store --add-fixed` (type "output:out" over
// a "fixed:out:" digest) produce for content hash h.
func MakeFixedOutput(storeDir string, recursive bool, h nixhash.Hash, name string) (Path, error) {
	if err := checkMake(storeDir, name); err != nil {
		return Path{}, err
	}
	if h.IsZero() {
		return Path{}, fmt.Errorf("%w: no content hash for %q", ErrInvalid, name)
	}
	if recursive && h.Algo() == nixhash.SHA256 {
		return MakeStorePath(storeDir, "source", [32]byte(h.Digest()), name), nil
	}
	method := ""
	if recursive {
		method = "r:"
	}
	inner := sha256.Sum256([]byte("fixed:out:" + method + h.Algo().String() + ":" + h.Hex() + ":"))
	return MakeStorePath(storeDir, "output:out", inner, name), nil
}

// MakeText computes the path of a text store object (builtins.toFile, .drv
// files) with SHA-256 content digest and the references given as basenames.
func MakeText(storeDir string, digest [32]byte, name string, refs []string) (Path, error) {
	if err := checkMake(storeDir, name); err != nil {
		return Path{}, err
	}
	sorted := slices.Clone(refs)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	typ := "text"
	for _, r := range sorted {
		if _, err := ParseBase(r); err != nil {
			return Path{}, fmt.Errorf("reference of %q: %w", name, err)
		}
		typ += ":" + storeDir + "/" + r
	}
	return MakeStorePath(storeDir, typ, digest, name), nil
}

func checkMake(storeDir, name string) error {
	if err := ValidateStoreDir(storeDir); err != nil {
		return err
	}
	return ValidateName(name)
}
