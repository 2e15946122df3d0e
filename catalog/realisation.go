package catalog

import (
	"encoding/json"
	"strings"
)

// nix32Chars are the characters of a store path's hash part.
const nix32Chars = "0123456789abcdfghijklmnpqrsvwxyz"

// RealisationOutHash returns the hash part of a realisation's outPath (the
// .doi JSON), or "" when the body has none: implementations index
// realisations by it, so that deleting a path deletes its realisations.
func RealisationOutHash(body []byte) string {
	var doc struct {
		OutPath json.RawMessage `json:"outPath"`
	}
	var out string
	if json.Unmarshal(body, &doc) != nil || json.Unmarshal(doc.OutPath, &out) != nil {
		return ""
	}
	out = out[strings.LastIndexByte(out, '/')+1:]
	if len(out) < 32 {
		return ""
	}
	for i := range 32 {
		if strings.IndexByte(nix32Chars, out[i]) < 0 {
			return ""
		}
	}
	return out[:32]
}
