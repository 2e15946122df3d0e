// Package catalog holds the cache's metadata: uploaded NARs, published store
// paths with their references and rendered narinfos, realisations and push
// tokens. The interface is implemented by catalog/sqlite (the default) and,
// later, PostgreSQL; catalog/catalogtest is the conformance suite both pass.
package catalog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

var (
	// ErrNotFound is returned when a lookup finds nothing.
	ErrNotFound = errors.New("catalog: not found")
	// ErrNARNotFound is returned by Publish when the path's NAR was never
	// recorded (or its lease ran out and it was removed).
	ErrNARNotFound = errors.New("catalog: NAR not uploaded")
	// ErrConflict is returned by Publish when the store path is already
	// published with a different NAR hash.
	ErrConflict = errors.New("catalog: path already published with different contents")
	// ErrMissingReferences is matched (errors.Is) by *MissingReferencesError.
	ErrMissingReferences = errors.New("catalog: references not in the cache")
)

// MissingReferencesError names the references of a path that are not
// published. It matches ErrMissingReferences with errors.Is.
type MissingReferencesError struct {
	HashParts []string
}

func (e *MissingReferencesError) Error() string {
	return fmt.Sprintf("%v: %s", ErrMissingReferences, strings.Join(e.HashParts, " "))
}

// Is reports whether target is ErrMissingReferences.
func (e *MissingReferencesError) Is(target error) bool { return target == ErrMissingReferences }

// NAR is one stored NAR file. Until a published path names it, it is
// "unclaimed" and lives on a lease that starts at CreatedAt.
type NAR struct {
	Key         string    // storage key of the stored file, e.g. "nar/<nix32>.nar.zst"
	Compression string    // narinfo Compression label of the stored file
	FileHash    string    // "sha256:<nix32>" of the stored file
	FileSize    int64     // length of the stored file
	NarHash     string    // "sha256:<nix32>" of the uncompressed NAR
	NarSize     int64     // length of the uncompressed NAR
	ListingKey  string    // storage key of its .ls listing, "" if none
	CreatedAt   time.Time // last upload; the start of its lease while unclaimed
}

// Path is one published store path. Its narinfo is rendered and signed at
// publish time, so serving it is a single lookup.
type Path struct {
	HashPart   string    // the 32-character hash part of StorePath
	StorePath  string    // the full store path
	NARKey     string    // NAR.Key of its NAR
	NarHash    string    // "sha256:<nix32>", equal to the NAR's
	NarSize    int64     // equal to the NAR's
	References []string  // hash parts of the paths it references (itself included if it does)
	Deriver    string    // basename of its .drv, or ""
	NarInfo    string    // the rendered, signed narinfo served to clients
	CreatedAt  time.Time // first publication
}

// Scope is what a token allows.
type Scope string

const (
	// ScopePush allows uploads, and reads.
	ScopePush Scope = "push"
	// ScopeRead allows reads when reads need a token.
	ScopeRead Scope = "read"
)

// Token is a stored access token. Only the SHA-256 of its secret is kept.
type Token struct {
	Name      string // unique, chosen by the operator
	Hash      []byte // SHA-256 of the secret
	Scope     Scope
	CreatedAt time.Time
}

// PublishOptions relax Publish's checks.
type PublishOptions struct {
	// AllowIncompleteClosure publishes even when references are missing.
	AllowIncompleteClosure bool
}

// Catalog is the metadata store. Every method is safe for concurrent use,
// also by several processes sharing the same database.
type Catalog interface {
	// PutNAR records an uploaded NAR (or renews the lease of an existing one
	// with the same Key, updating its fields) and points each alias at it.
	// Aliases are the names a NAR was uploaded under ("nar/<hash>.nar.xz").
	PutNAR(ctx context.Context, n NAR, aliases ...string) error
	// LookupNAR finds a NAR by its Key or by one of its aliases.
	LookupNAR(ctx context.Context, name string) (NAR, error)
	// Publish records p atomically. It fails with ErrNARNotFound if
	// p.NARKey is not recorded, with *MissingReferencesError if a reference
	// other than p itself is not published (unless opts allow it), and with
	// ErrConflict if p.HashPart is published with another NarHash. When p is
	// already published with the same NarHash, its NarInfo is replaced (so
	// new signatures are kept) and CreatedAt is left alone.
	Publish(ctx context.Context, p Path, opts PublishOptions) error
	// NarInfo returns the rendered narinfo of a published path; the hot path.
	NarInfo(ctx context.Context, hashPart string) (string, error)
	// Path returns the whole record of a published path.
	Path(ctx context.Context, hashPart string) (Path, error)
	// WalkPaths calls fn for every published path, in no particular order.
	WalkPaths(ctx context.Context, fn func(Path) error) error

	// UnclaimedNARs lists NARs that no published path names and whose
	// CreatedAt is before the given time.
	UnclaimedNARs(ctx context.Context, before time.Time) ([]NAR, error)
	// DeleteUnclaimedNAR removes the NAR record with this key, and its
	// aliases, only if no path names it and its CreatedAt is still before
	// the given time. It reports whether it removed it; the caller deletes
	// the blobs afterwards, so a record never outlives its blob.
	DeleteUnclaimedNAR(ctx context.Context, key string, before time.Time) (bool, error)
	// BlobInUse reports whether key is the Key or ListingKey of a recorded NAR.
	BlobInUse(ctx context.Context, key string) (bool, error)

	// PutRealisation stores a realisation (the .doi JSON) under its id,
	// replacing any previous one.
	PutRealisation(ctx context.Context, id string, body []byte) error
	// Realisation returns a stored realisation.
	Realisation(ctx context.Context, id string) ([]byte, error)

	// CreateToken stores a token; a token with the same Name fails with ErrConflict.
	CreateToken(ctx context.Context, t Token) error
	// TokenByHash finds a token by the SHA-256 of its secret.
	TokenByHash(ctx context.Context, hash []byte) (Token, error)
	// Tokens lists all tokens, ordered by name.
	Tokens(ctx context.Context) ([]Token, error)
	// DeleteToken removes the token with this name (ErrNotFound if none).
	DeleteToken(ctx context.Context, name string) error

	// Close releases the catalog's resources.
	Close() error
}
