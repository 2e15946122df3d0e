package narinfo

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/nix-cached/cached/nixhash"
	"github.com/nix-cached/cached/storepath"
)

// AppendText appends ni in the format of Nix 2.8's NarInfo::to_string to
// dst: StorePath, URL, Compression, FileHash, FileSize, NarHash, NarSize,
// References, Deriver, System, one Sig line per signature, CA. Empty
// optional fields are left out, FileSize is written when FileHash or
// FileSize is set, References is always written ("References: " when
// empty), hashes are written "<algo>:<nix32>", and References and Sigs in
// slice order.
func (ni *NarInfo) AppendText(dst []byte) []byte {
	dst = appendField(dst, "StorePath: ", ni.StorePath)
	dst = appendField(dst, "URL: ", ni.URL)
	if ni.Compression != "" {
		dst = appendField(dst, "Compression: ", ni.Compression)
	}
	if !ni.FileHash.IsZero() {
		dst = append(dst, "FileHash: "...)
		dst = append(ni.FileHash.AppendText(dst), '\n')
	}
	if !ni.FileHash.IsZero() || ni.FileSize != 0 {
		dst = append(dst, "FileSize: "...)
		dst = append(strconv.AppendUint(dst, ni.FileSize, 10), '\n')
	}
	dst = append(dst, "NarHash: "...)
	dst = append(ni.NarHash.AppendText(dst), '\n')
	dst = append(dst, "NarSize: "...)
	dst = append(strconv.AppendUint(dst, ni.NarSize, 10), '\n')
	dst = append(dst, "References: "...)
	for i, r := range ni.References {
		if i > 0 {
			dst = append(dst, ' ')
		}
		dst = append(dst, r...)
	}
	dst = append(dst, '\n')
	if ni.Deriver != "" {
		dst = appendField(dst, "Deriver: ", ni.Deriver)
	}
	if ni.System != "" {
		dst = appendField(dst, "System: ", ni.System)
	}
	for _, s := range ni.Sigs {
		dst = appendField(dst, "Sig: ", s)
	}
	if ni.CA != "" {
		dst = appendField(dst, "CA: ", ni.CA)
	}
	return dst
}

func appendField(dst []byte, key, value string) []byte {
	dst = append(dst, key...)
	dst = append(dst, value...)
	return append(dst, '\n')
}

// String returns the narinfo text that AppendText writes.
func (ni *NarInfo) String() string {
	return string(ni.AppendText(make([]byte, 0, 1024)))
}

// AppendFingerprint appends the string that narinfo signatures cover:
// "1;<StorePath>;sha256:<NarHash nix32>;<NarSize>;<references>", where the
// references are full store paths (in StorePath's store dir), sorted,
// without duplicates and joined by ",". It fails unless StorePath and every
// reference are valid, NarHash is SHA-256 and NarSize is non-zero.
func (ni *NarInfo) AppendFingerprint(dst []byte) ([]byte, error) {
	dir, _, err := splitStorePath(ni.StorePath)
	if err != nil {
		return dst, fmt.Errorf("%w: fingerprint: StorePath: %w", ErrInvalid, err)
	}
	if ni.NarHash.Algo() != nixhash.SHA256 {
		return dst, fmt.Errorf("%w: fingerprint of %s: NarHash is not SHA-256", ErrInvalid, ni.StorePath)
	}
	if ni.NarSize == 0 {
		return dst, fmt.Errorf("%w: fingerprint of %s: NarSize is 0", ErrInvalid, ni.StorePath)
	}
	refs := ni.References
	if !sortedUnique(refs) {
		refs = slices.Clone(refs)
		slices.Sort(refs)
		refs = slices.Compact(refs)
	}
	for _, r := range refs {
		if _, err := storepath.ParseBase(r); err != nil {
			return dst, fmt.Errorf("%w: fingerprint of %s: reference: %w", ErrInvalid, ni.StorePath, err)
		}
	}
	dst = append(dst, "1;"...)
	dst = append(dst, ni.StorePath...)
	dst = append(dst, ';')
	dst = ni.NarHash.AppendText(dst)
	dst = append(dst, ';')
	dst = strconv.AppendUint(dst, ni.NarSize, 10)
	dst = append(dst, ';')
	for i, r := range refs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, dir...)
		dst = append(dst, '/')
		dst = append(dst, r...)
	}
	return dst, nil
}

// sortedUnique reports whether s is strictly increasing.
func sortedUnique(s []string) bool {
	for i := 1; i < len(s); i++ {
		if s[i-1] >= s[i] {
			return false
		}
	}
	return true
}
