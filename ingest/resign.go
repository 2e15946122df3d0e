package ingest

import (
	"fmt"
	"slices"

	"github.com/nix-cached/cached/narinfo"
)

// retiredKey reports whether name is one of RetiredKeys: signatures under
// it are removed, whoever made them.
func (in *Ingester) retiredKey(name string) bool {
	return slices.Contains(in.opt.RetiredKeys, name)
}

// Resign returns a published narinfo signed as a push of it would be
// signed now (Sign): the signatures of the current keys made again, those
// under retired key names removed, the others (a client's, an upstream's)
// kept. Signing is deterministic (ed25519), so a narinfo already signed
// that way comes back unchanged: re-signing (key rollover) rewrites only
// the narinfos for which Resign returns another text.
func (in *Ingester) Resign(text string) (string, error) {
	ni, err := narinfo.Parse([]byte(text))
	if err != nil {
		return "", fmt.Errorf("ingest: re-signing: %w", err)
	}
	if err := in.Sign(ni); err != nil {
		return "", fmt.Errorf("ingest: re-signing %s: %w", ni.StorePath, err)
	}
	return ni.String(), nil
}
