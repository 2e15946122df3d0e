package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/storepath"
)

// ValidateRealisationID checks a DrvOutput id, "sha256:<64 hex>!<output>".
func ValidateRealisationID(id string) error {
	hash, out, ok := strings.Cut(id, "!")
	hex, isSHA := strings.CutPrefix(hash, "sha256:")
	if !ok || !isSHA || len(hex) != 64 || strings.Trim(hex, "0123456789abcdef") != "" {
		return fmt.Errorf("%w: realisation id %q is not sha256:<hex>!<output>", ErrInvalid, id)
	}
	if err := storepath.ValidateName(out); err != nil {
		return fmt.Errorf("%w: realisation id %q: output name: %v", ErrInvalid, id, err)
	}
	return nil
}

// realisation is the part of a .doi file the cache checks.
type realisation struct {
	ID      string `json:"id"`
	OutPath string `json:"outPath"`
}

// Realisation stores a realisation (ca-derivations) uploaded under id. Its
// id must match and its output path must be published, unless incomplete
// closures are allowed.
func (in *Ingester) Realisation(ctx context.Context, id string, body []byte) error {
	if err := ValidateRealisationID(id); err != nil {
		return err
	}
	var r realisation
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("%w: realisation is not JSON: %v", ErrInvalid, err)
	}
	if r.ID != id {
		return fmt.Errorf("%w: realisation %q uploaded as %q", ErrInvalid, r.ID, id)
	}
	out, err := storepath.ParseBase(r.OutPath)
	if err != nil {
		return fmt.Errorf("%w: realisation outPath: %v", ErrInvalid, err)
	}
	if !in.opt.AllowIncompleteClosure {
		if _, err := in.cat.Path(ctx, out.Hash); errors.Is(err, catalog.ErrNotFound) {
			return fmt.Errorf("%w: %w: realisation output %s", ErrInvalid, catalog.ErrMissingReferences, r.OutPath)
		} else if err != nil {
			return err
		}
	}
	return in.cat.PutRealisation(ctx, id, body)
}
