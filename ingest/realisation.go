package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/realisation"
	"github.com/nix-cached/cached/storepath"
)

// Realisation stores a legacy realisation (realisations/<id>.doi, Nix ≤
// 2.34 and Lix) uploaded under id.
func (in *Ingester) Realisation(ctx context.Context, id string, body []byte) error {
	r, err := realisation.ParseLegacy(id, body)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return in.putRealisation(ctx, r)
}

// BuildTrace stores a build trace entry (build-trace-v2/<drv>/<output>.doi,
// Nix ≥ 2.35) uploaded for output of the derivation drv (a basename).
func (in *Ingester) BuildTrace(ctx context.Context, drv, output string, body []byte) error {
	r, err := realisation.ParseBuildTrace(drv, output, body)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return in.putRealisation(ctx, r)
}

// putRealisation publishes a realisation signed by the server's keys, as
// Nix signs one, keeping the client's well-formed signatures. Its output
// path must be published, unless incomplete closures are allowed. The
// same realisation uploaded again gains its signatures; one that names
// another output path is refused, as Nix's own store refuses it, and the
// first stays.
func (in *Ingester) putRealisation(ctx context.Context, r *realisation.Realisation) error {
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
	sigs := in.keepSigs(r.Sigs)
	prev, err := in.cat.Realisation(ctx, r.ID)
	switch {
	case err == nil:
		old, perr := reparse(r, prev)
		if perr != nil {
			return fmt.Errorf("ingest: stored realisation %s: %w", r.ID, perr)
		}
		if old.OutPath != r.OutPath {
			return fmt.Errorf("%w: realisation %s is %s here, not %s", catalog.ErrConflict, r.ID, old.OutPath, r.OutPath)
		}
		sigs = append(sigs, in.keepSigs(old.Sigs)...)
	case !errors.Is(err, catalog.ErrNotFound):
		return err
	}
	for _, fp := range r.Fingerprints() {
		for _, k := range in.opt.Keys {
			sigs = append(sigs, k.Sign(fp))
		}
	}
	slices.Sort(sigs)
	r.Sigs = slices.Compact(sigs)
	return in.cat.PutRealisation(ctx, r.ID, r.Marshal())
}

// reparse parses a stored document of r's format and key.
func reparse(r *realisation.Realisation, body []byte) (*realisation.Realisation, error) {
	if r.Format == realisation.BuildTrace {
		return realisation.ParseBuildTrace(r.DrvPath, r.Output, body)
	}
	return realisation.ParseLegacy(r.ID, body)
}
