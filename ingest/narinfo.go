package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/narinfo"
	"github.com/nix-cached/cached/nixhash"
	"github.com/nix-cached/cached/signing"
	"github.com/nix-cached/cached/storepath"
)

// NarInfo publishes a narinfo uploaded as "<hashPart>.narinfo". It is the
// commit of a push: the NAR it names must have been uploaded and must match
// its NarHash and NarSize, and its references must be published (unless
// incomplete closures are allowed). The published narinfo names the stored
// NAR file, keeps the client's signatures and adds the server's.
func (in *Ingester) NarInfo(ctx context.Context, hashPart string, body []byte) (catalog.Path, error) {
	return in.narInfo(ctx, hashPart, body, false)
}

// MirroredNarInfo is NarInfo for a narinfo an upstream served
// (pull-through), whose NAR was fetched from it: the path is recorded as
// mirrored (catalog.Path.Mirrored).
func (in *Ingester) MirroredNarInfo(ctx context.Context, hashPart string, body []byte) (catalog.Path, error) {
	return in.narInfo(ctx, hashPart, body, true)
}

func (in *Ingester) narInfo(ctx context.Context, hashPart string, body []byte, mirrored bool) (catalog.Path, error) {
	ni, err := narinfo.Parse(body)
	if err != nil {
		return catalog.Path{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	sp, err := storepath.Parse(in.opt.StoreDir, ni.StorePath)
	if err != nil {
		return catalog.Path{}, fmt.Errorf("%w: StorePath: %v", ErrInvalid, err)
	}
	if sp.Hash != hashPart {
		return catalog.Path{}, fmt.Errorf("%w: narinfo for %s uploaded as %s.narinfo", ErrInvalid, ni.StorePath, hashPart)
	}
	if ni.NarHash.Algo() != nixhash.SHA256 {
		return catalog.Path{}, fmt.Errorf("%w: NarHash must be sha256", ErrInvalid)
	}
	n, err := in.cat.LookupNAR(ctx, ni.URL)
	if errors.Is(err, catalog.ErrNotFound) {
		return catalog.Path{}, fmt.Errorf("%w: %w: %s", ErrInvalid, catalog.ErrNARNotFound, ni.URL)
	}
	if err != nil {
		return catalog.Path{}, err
	}
	if n.NarHash != ni.NarHash.String() || uint64(n.NarSize) != ni.NarSize {
		return catalog.Path{}, fmt.Errorf("%w: NarHash/NarSize %s/%d differ from the uploaded NAR's %s/%d",
			ErrNarInfoMismatch, ni.NarHash, ni.NarSize, n.NarHash, n.NarSize)
	}
	old, err := in.cat.Path(ctx, hashPart)
	switch {
	case err == nil && old.NarHash == n.NarHash && old.NARKey != n.Key:
		// The same contents again, uploaded under another file: keep the
		// NAR already served, since clients may hold its narinfo for a
		// month. The new upload stays unclaimed and expires.
		if prev, err := in.cat.LookupNAR(ctx, old.NARKey); err == nil {
			n = prev
		} else if !errors.Is(err, catalog.ErrNotFound) {
			return catalog.Path{}, err
		}
	case err != nil && !errors.Is(err, catalog.ErrNotFound):
		return catalog.Path{}, err
	}
	fileHash, err := nixhash.Parse(n.FileHash)
	if err != nil {
		return catalog.Path{}, fmt.Errorf("ingest: stored NAR %s: %w", n.Key, err)
	}

	refs := make([]string, 0, len(ni.References))
	refHashes := make([]string, 0, len(ni.References))
	for _, r := range ni.References {
		p, err := storepath.ParseBase(r)
		if err != nil {
			return catalog.Path{}, fmt.Errorf("%w: reference %q: %v", ErrInvalid, r, err)
		}
		refs = append(refs, r)
		refHashes = append(refHashes, p.Hash)
	}
	slices.Sort(refs)
	refs = slices.Compact(refs)
	slices.Sort(refHashes)
	refHashes = slices.Compact(refHashes)

	out := narinfo.NarInfo{
		StorePath:   ni.StorePath,
		URL:         n.Key,
		Compression: n.Compression,
		FileHash:    fileHash,
		FileSize:    uint64(n.FileSize),
		NarHash:     ni.NarHash,
		NarSize:     ni.NarSize,
		References:  refs,
		Deriver:     ni.Deriver,
		System:      ni.System,
		CA:          ni.CA,
	}
	out.Sigs = ni.Sigs
	if old.NarHash == n.NarHash {
		// Re-publishing the same contents: keep the signatures it had.
		if prev, err := narinfo.Parse([]byte(old.NarInfo)); err == nil {
			out.Sigs = append(slices.Clone(out.Sigs), prev.Sigs...)
		}
	}
	if err := in.Sign(&out); err != nil {
		return catalog.Path{}, err
	}

	p := catalog.Path{
		HashPart:   hashPart,
		StorePath:  ni.StorePath,
		NARKey:     n.Key,
		NarHash:    n.NarHash,
		NarSize:    n.NarSize,
		References: refHashes,
		Deriver:    ni.Deriver,
		NarInfo:    out.String(),
		CreatedAt:  in.opt.Now(),
		Mirrored:   mirrored,
	}
	err = in.cat.Publish(ctx, p, catalog.PublishOptions{AllowIncompleteClosure: in.opt.AllowIncompleteClosure})
	switch {
	case errors.Is(err, catalog.ErrMissingReferences):
		return catalog.Path{}, fmt.Errorf("%w: %w (push its dependencies first)", ErrInvalid, err)
	case errors.Is(err, catalog.ErrNARNotFound):
		return catalog.Path{}, fmt.Errorf("%w: %w: %s", ErrInvalid, catalog.ErrNARNotFound, ni.URL)
	case err != nil:
		return catalog.Path{}, err
	}
	return p, nil
}

// keepSigs returns the client signatures worth keeping: well-formed 64-byte
// signatures under key names other than the server's own and its retired
// ones (RetiredKeys). A malformed
// signature under a name a client trusts is a hard error in Nix, so it
// would make the path unusable; one under the server's name is replaced by
// the server's own.
func (in *Ingester) keepSigs(sigs []string) []string {
	out := make([]string, 0, len(sigs)+len(in.opt.Keys))
	for _, s := range sigs {
		sig, err := signing.ParseSignature(strings.TrimSpace(s))
		if err != nil || len(sig.Bytes) != 64 || in.ownKey(sig.KeyName) || in.retiredKey(sig.KeyName) {
			continue
		}
		out = append(out, s)
	}
	return out
}

func (in *Ingester) ownKey(name string) bool {
	for _, k := range in.opt.Keys {
		if k.Name() == name {
			return true
		}
	}
	return false
}

// Sign replaces ni's signatures by the server's, keeping the well-formed
// ones under other names (a client's, or an upstream's: a client trusting
// only the upstream's key still accepts a mirrored path).
func (in *Ingester) Sign(ni *narinfo.NarInfo) error {
	fp, err := ni.AppendFingerprint(nil)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	sigs := in.keepSigs(ni.Sigs)
	for _, k := range in.opt.Keys {
		sigs = append(sigs, k.Sign(fp))
	}
	slices.Sort(sigs)
	ni.Sigs = slices.Compact(sigs)
	return nil
}
