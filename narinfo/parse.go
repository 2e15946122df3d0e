package narinfo

import (
	"errors"
	"fmt"
	"strings"

	"github.com/nix-cached/cached/nixhash"
	"github.com/nix-cached/cached/storepath"
)

// Parse reads a narinfo. Each line is "Key: value"; the key is the text
// before the first ':', the value what follows with leading spaces and tabs
// and trailing carriage returns removed. Empty lines and unknown keys are
// skipped and the last line may lack its newline. A repeated key overrides
// the earlier one, except that References after a non-empty References, and
// a second non-empty CA, are errors. StorePath, a non-empty URL, NarHash
// and a non-zero NarSize are required.
//
// All strings in the result share one copy of data.
func Parse(data []byte) (*NarInfo, error) {
	text := string(data)
	ni := &NarInfo{}
	haveStorePath := false
	for lineNo, rest := 1, text; rest != ""; lineNo++ {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		line = strings.TrimRight(line, "\r")
		if line == "" {
			continue
		}
		colon := strings.IndexByte(line, ':')
		if colon < 0 {
			return nil, fmt.Errorf("%w: line %d has no ':': %q", ErrInvalid, lineNo, clip(line))
		}
		key, value := line[:colon], strings.TrimLeft(line[colon+1:], " \t")
		var err error
		switch key {
		case "StorePath":
			_, _, err = splitStorePath(value)
			ni.StorePath, haveStorePath = value, true
		case "URL":
			ni.URL = value
		case "Compression":
			ni.Compression = value
		case "FileHash":
			ni.FileHash, err = nixhash.Parse(value)
		case "FileSize":
			ni.FileSize, err = parseUint(value)
		case "NarHash":
			ni.NarHash, err = nixhash.Parse(value)
		case "NarSize":
			ni.NarSize, err = parseUint(value)
		case "References":
			if len(ni.References) > 0 {
				return nil, fmt.Errorf("%w: line %d: References appears twice", ErrInvalid, lineNo)
			}
			ni.References, err = parseReferences(value)
		case "Deriver":
			ni.Deriver = ""
			if value != "unknown-deriver" {
				_, err = storepath.ParseBase(value)
				ni.Deriver = value
			}
		case "System":
			ni.System = value
		case "Sig":
			err = checkSig(value)
			if ni.Sigs == nil {
				// One allocation for all Sig lines; the count may be high.
				ni.Sigs = make([]string, 0, 1+strings.Count(rest, "Sig:"))
			}
			ni.Sigs = append(ni.Sigs, value)
		case "CA":
			if ni.CA != "" {
				return nil, fmt.Errorf("%w: line %d: CA appears twice", ErrInvalid, lineNo)
			}
			ni.CA = value
		}
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %s: %w", ErrInvalid, lineNo, key, err)
		}
	}
	switch {
	case !haveStorePath:
		return nil, fmt.Errorf("%w: no StorePath", ErrInvalid)
	case ni.URL == "":
		return nil, fmt.Errorf("%w: no URL", ErrInvalid)
	case ni.NarHash.IsZero():
		return nil, fmt.Errorf("%w: no NarHash", ErrInvalid)
	case ni.NarSize == 0:
		return nil, fmt.Errorf("%w: no NarSize or NarSize 0", ErrInvalid)
	}
	return ni, nil
}

// parseUint parses a decimal uint64: digits only, no sign.
func parseUint(s string) (uint64, error) {
	if s == "" {
		return 0, errors.New("empty number")
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a decimal number", clip(s))
		}
		d := uint64(c - '0')
		if n > (1<<64-1-d)/10 {
			return 0, fmt.Errorf("%q is out of range", clip(s))
		}
		n = n*10 + d
	}
	return n, nil
}

// parseReferences splits a space-separated list of store path basenames,
// returning nil for an empty list.
func parseReferences(s string) ([]string, error) {
	n := 0
	for f := range strings.SplitSeq(s, " ") {
		if f != "" {
			n++
		}
	}
	if n == 0 {
		return nil, nil
	}
	refs := make([]string, 0, n)
	for f := range strings.SplitSeq(s, " ") {
		if f == "" {
			continue
		}
		if _, err := storepath.ParseBase(f); err != nil {
			return nil, err
		}
		refs = append(refs, f)
	}
	return refs, nil
}

// checkSig checks that a Sig value is "<name>:<data>" with both parts
// non-empty. The data is not decoded here.
func checkSig(s string) error {
	name, data, ok := strings.Cut(s, ":")
	if !ok || name == "" || data == "" {
		return fmt.Errorf("%q is not <key name>:<signature>", clip(s))
	}
	return nil
}
