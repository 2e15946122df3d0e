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
	// ErrBusy is returned by BeginNAR and PutNAR while a record for one of
	// the keys is being deleted: the upload should be retried shortly.
	ErrBusy = errors.New("catalog: blob is being deleted, retry")
	// ErrReferenced is returned by DeletePath for a path that another
	// published path references.
	ErrReferenced = errors.New("catalog: path is referenced by another path")
	// ErrPinned is returned by DeletePath for a pinned path.
	ErrPinned = errors.New("catalog: path is pinned")
	// ErrKept is returned by DeletePath when the path was published or used
	// after the times the caller gave: it became live since it was judged.
	ErrKept = errors.New("catalog: path was published or used since")
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
//
// A NAR record is also the lock on its blobs (Key and ListingKey) between
// uploads and deletions, across processes: an upload calls BeginNAR before
// it puts its blobs in place and PutNAR after; a deletion marks the record
// deleting (MarkNARDeleting, or DeletePath when a NAR loses its last path)
// before it deletes the blobs and drops the record (DropNAR) after. BeginNAR
// refuses while a deletion of either key is under way, and deletions skip
// records that are not ready, so an upload and a deletion of the same blob
// never interleave.
type NAR struct {
	Key         string    // storage key of the stored file, e.g. "nar/<nix32>.nar.zst"
	Compression string    // narinfo Compression label of the stored file
	FileHash    string    // "sha256:<nix32>" of the stored file
	FileSize    int64     // length of the stored file
	NarHash     string    // "sha256:<nix32>" of the uncompressed NAR
	NarSize     int64     // length of the uncompressed NAR
	ListingKey  string    // storage key of its .ls listing, "" if none
	CreatedAt   time.Time // last upload; the start of its lease while unclaimed
	Quarantined bool      // its blob was found damaged or lost (Quarantine); ignored by PutNAR
	Scrubbed    time.Time // its last check by a scrub (zero: never); ScrubQueue sets it, PutNAR ignores it
}

// QuarantinedPath is a path Quarantine hides.
type QuarantinedPath struct {
	HashPart  string
	StorePath string
	NARKey    string    // the damaged NAR: the path's own, or one in its closure
	Reason    string    // why the NAR was quarantined
	Since     time.Time // when
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
	LastUsed   time.Time // last narinfo or NAR request, or push of the same path
	// Mirrored: published from an upstream's narinfo (pull-through), not
	// pushed. Publishing the path again keeps it only if that is mirrored
	// too: a push makes a mirrored path a pushed one.
	Mirrored bool
}

// MaxNarInfoAge bounds how long a process may go on answering with a
// narinfo it keeps in memory after the path's deletion committed
// (catalog/infocache stops answering from memory when it has not read the
// change log for this long). Whoever deletes paths waits at least
// BlobGrace after the deletion before deleting their blobs, so that a
// narinfo is never served without its NAR.
const (
	MaxNarInfoAge = 2 * time.Second
	BlobGrace     = 2*MaxNarInfoAge + time.Second
)

// Change is one entry of the narinfo change log: the path with this hash
// part was published, replaced (new signatures) or deleted.
type Change struct {
	Seq      int64
	HashPart string
}

// GraphNode is what the garbage collector needs to know of a published
// path.
type GraphNode struct {
	HashPart   string
	StorePath  string
	NARKey     string
	FileSize   int64 // size of its stored NAR file (shared NARs count for each path)
	CreatedAt  time.Time
	LastUsed   time.Time
	References []string // hash parts, self included if it refers to itself
	Mirrored   bool     // Path.Mirrored
}

// Pin keeps a path and its closure alive, under a name. Adding a pin with
// an existing name makes the new path the name's current pin and, if asked,
// keeps some previous ones.
type Pin struct {
	Name      string
	HashPart  string
	StorePath string
	CreatedAt time.Time
	ExpiresAt time.Time // zero: never
	Current   bool      // the name's newest pin; false for kept previous ones
}

// DeleteCondition says when DeletePath must refuse, so that a path judged
// dead is not removed after it became live again.
type DeleteCondition struct {
	// CreatedBefore refuses (ErrKept) a path published at or after it, and
	// keeps (unclaimed) a NAR uploaded at or after it; pins that expired at
	// or before it do not pin (with a zero CreatedBefore every pin does).
	// Zero: no condition.
	CreatedBefore time.Time
	// UsedBefore refuses (ErrKept) a path used at or after it. Zero: no
	// condition.
	UsedBefore time.Time
	// IgnorePins removes a pinned path anyway (its pins go with it).
	IgnorePins bool
}

// Deleted is what DeletePath removed and what the caller must now delete
// from blob storage.
type Deleted struct {
	Path Path
	// NAR is the path's NAR when no published path names it any more and
	// it was marked deleting: delete its blobs, then DropNAR. Nil when the
	// NAR stays (still named, or too recent: it lives on as unclaimed).
	NAR *NAR
	// OrphanLog is the deriver (.drv basename) of the path when no
	// remaining path has it, so its build log can go; "" otherwise.
	OrphanLog string
}

// DeleteResult is the outcome for one path of DeletePaths: what was
// removed, or why it was refused.
type DeleteResult struct {
	Deleted
	Err error
}

// GCRun is the record of one garbage collection.
type GCRun struct {
	Holder       string // who ran it (host and process)
	Started      time.Time
	Finished     time.Time
	PathsRemoved int
	NARsRemoved  int
	BytesRemoved int64
	LivePaths    int
	LiveBytes    int64
	Error        string // "" when it completed
}

// AgeBucket counts the paths last used within an age.
type AgeBucket struct {
	Within time.Duration // upper bound of the age (the last bucket holds the rest)
	Paths  int
	Bytes  int64
}

// Stats are the numbers `cached stats` reports.
type Stats struct {
	Paths          int   // published paths
	NARs           int   // NAR files named by published paths
	Bytes          int64 // their file sizes
	UnclaimedNARs  int   // uploaded NARs no path names yet
	UnclaimedBytes int64
	Pins           int
	ByLastUse      []AgeBucket // paths and their NAR bytes by the age of their last use
}

// Scope is what a token allows.
type Scope string

const (
	// ScopeAdmin allows the admin endpoints, uploads and reads.
	ScopeAdmin Scope = "admin"
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
	// BeginNAR is called before an upload puts blobs at key and listingKey
	// in place: it records a pending NAR (or renews the CreatedAt of an
	// existing one) so that no deletion touches them, and fails with
	// ErrBusy while a record of either key is being deleted.
	//
	// BeginNAR and PutNAR need not be durable when they return: a power
	// failure may undo them until a later Publish commits, which makes
	// them durable with it. They only matter to the narinfo that follows.
	BeginNAR(ctx context.Context, key, listingKey string, at time.Time) error
	// PutNAR records an uploaded NAR as ready (or renews the lease of an
	// existing one with the same Key, updating its fields) and points each
	// alias at it. Aliases are the names a NAR was uploaded under
	// ("nar/<hash>.nar.xz"). It fails with ErrBusy while the record is
	// being deleted.
	PutNAR(ctx context.Context, n NAR, aliases ...string) error
	// LookupNAR finds a ready NAR by its Key or by one of its aliases.
	LookupNAR(ctx context.Context, name string) (NAR, error)
	// Publish records p atomically. It fails with ErrNARNotFound if
	// p.NARKey is not a ready NAR (or a quarantined one: it must be
	// uploaded again), with *MissingReferencesError if a
	// reference other than p itself is not published (unless opts allow
	// it), and with ErrConflict if p.HashPart is published with another
	// NarHash. When p is already published with the same NarHash, its
	// NarInfo is replaced (so new signatures are kept), CreatedAt is left
	// alone and LastUsed is set to p.CreatedAt (a push is a use). A new
	// path's LastUsed is its CreatedAt.
	Publish(ctx context.Context, p Path, opts PublishOptions) error
	// NarInfo returns the rendered narinfo of a published path; the hot path.
	NarInfo(ctx context.Context, hashPart string) (string, error)
	// Changes returns up to limit entries of the narinfo change log with
	// Seq > after, in Seq order. Every transaction that publishes, replaces
	// or deletes a path records its hash part there, and Seq order is the
	// order those transactions committed: a reader that has seen Seq n has
	// seen every change committed before it. Processes that keep narinfos
	// in memory (catalog/infocache) follow the log to forget stale ones.
	Changes(ctx context.Context, after int64, limit int) ([]Change, error)
	// LastChange returns the highest Seq of the change log (0 when empty).
	LastChange(ctx context.Context) (int64, error)
	// PruneChanges removes the change log entries recorded before the
	// given time, and returns how many went.
	PruneChanges(ctx context.Context, before time.Time) (int64, error)
	// Path returns the whole record of a published path.
	Path(ctx context.Context, hashPart string) (Path, error)
	// WalkPaths calls fn for every published path, in no particular order.
	WalkPaths(ctx context.Context, fn func(Path) error) error
	// WalkGraph calls fn for every published path with what garbage
	// collection needs, in no particular order.
	WalkGraph(ctx context.Context, fn func(GraphNode) error) error
	// Referrers returns the hash parts of the published paths that
	// reference hashPart, itself excluded.
	Referrers(ctx context.Context, hashPart string) ([]string, error)
	// SearchPaths returns up to limit published paths (quarantined ones
	// included) whose name, the part of the store path after the hash part
	// and '-', contains query, ignoring ASCII case; "" matches every path.
	// They come ordered by name, then hash part, both bytewise, starting
	// after the path whose base name ("<hash part>-<name>") is after ("":
	// from the first). limit must be positive.
	SearchPaths(ctx context.Context, query, after string, limit int) ([]Path, error)

	// RecordUse moves the LastUsed of paths forward (never back): paths
	// maps hash parts, and nars maps NAR keys (every path with that NAR),
	// to the time of their last use. Unknown names are ignored.
	RecordUse(ctx context.Context, paths, nars map[string]time.Time) error

	// DeletePath removes a published path, its references and its
	// realisations in one transaction, unless another path references it
	// (ErrReferenced), it is pinned (ErrPinned, unless cond.IgnorePins) or
	// cond says it was published or used too recently (ErrKept). When its
	// NAR is left with no path and is older than cond.CreatedBefore, the
	// NAR is marked deleting and returned (see Deleted).
	DeletePath(ctx context.Context, hashPart string, cond DeleteCondition) (Deleted, error)
	// DeletePaths is DeletePath for several paths, in the order given, in
	// one transaction (so a path deleted earlier no longer refers to the
	// later ones). A refusal (ErrNotFound, ErrReferenced, ErrPinned,
	// ErrKept) is reported in that path's result and the others go on; any
	// other error undoes the whole batch and is returned.
	DeletePaths(ctx context.Context, hashParts []string, cond DeleteCondition) ([]DeleteResult, error)

	// UnclaimedNARs lists NARs (ready or pending) that no published path
	// names and whose CreatedAt is before the given time.
	UnclaimedNARs(ctx context.Context, before time.Time) ([]NAR, error)
	// MarkNARDeleting marks the record with this key deleting, if it is
	// not being written (pending) or deleted already, no path names it,
	// and its CreatedAt is before the given time; when no record has key
	// as its Key or ListingKey (an orphan blob), it records a deleting
	// placeholder for it. It reports whether the caller may now delete the
	// blob(s) (the NAR returned names them) and then DropNAR.
	MarkNARDeleting(ctx context.Context, key string, before time.Time) (NAR, bool, error)
	// DeletingNARs lists the records marked deleting: after a crash their
	// blobs may still exist.
	DeletingNARs(ctx context.Context) ([]NAR, error)
	// DropNAR removes a record marked deleting, and its aliases, once its
	// blobs are gone. Dropping an absent record succeeds.
	DropNAR(ctx context.Context, key string) error
	// DropNARs is DropNAR for several keys, in one transaction.
	DropNARs(ctx context.Context, keys []string) error
	// BlobInUse reports whether key is the Key or ListingKey of a NAR
	// record that is not being deleted.
	BlobInUse(ctx context.Context, key string) (bool, error)

	// Quarantine fences off the ready NAR with this key, whose blob was
	// found damaged or lost: the paths that name it, and every path that
	// references one of them directly or not, stop being served (NarInfo
	// answers ErrNotFound, and the change log records them), and
	// LookupNAR reports it Quarantined. It returns the hash parts it hid
	// now (none for a key that is not a ready NAR, or one already
	// quarantined). PutNAR of the same key (a new, verified upload) lifts
	// the NAR's quarantine; a hidden path is served again once it is
	// published again with a NAR that is not quarantined and no hidden
	// reference (as nix copy pushes every path it finds missing).
	Quarantine(ctx context.Context, key, reason string, at time.Time) ([]string, error)
	// Quarantined lists the paths Quarantine hides, ordered by store path.
	Quarantined(ctx context.Context) ([]QuarantinedPath, error)
	// ScrubQueue returns up to limit ready NARs that are not quarantined,
	// those never scrubbed first, then those scrubbed longest ago.
	ScrubQueue(ctx context.Context, limit int) ([]NAR, error)
	// MarkScrubbed records that the NAR with this key was checked at at.
	MarkScrubbed(ctx context.Context, key string, at time.Time) error

	// AddPin pins a published path (ErrNotFound if it is not) under a
	// name. The name's previous current pin stops being current; the
	// newest keep of the previous ones stay, older ones are removed.
	AddPin(ctx context.Context, p Pin, keep int) error
	// Pins lists every pin, ordered by name, newest first within a name.
	Pins(ctx context.Context) ([]Pin, error)
	// RemovePin removes every pin of a name (ErrNotFound if none).
	RemovePin(ctx context.Context, name string) error

	// TryLock takes or renews the named lock for holder until ttl from
	// now; it reports false when another holder has it unexpired.
	TryLock(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	// Unlock releases the named lock if holder has it.
	Unlock(ctx context.Context, name, holder string) error

	// RecordGCRun stores the record of a garbage collection.
	RecordGCRun(ctx context.Context, r GCRun) error
	// LastGCRun returns the newest GC record (ErrNotFound if none).
	LastGCRun(ctx context.Context) (GCRun, error)
	// GCRuns returns up to limit GC records, newest (latest Started, then
	// last recorded) first. limit must be positive.
	GCRuns(ctx context.Context, limit int) ([]GCRun, error)
	// Stats counts the cache's contents; ages are the upper bounds of the
	// ByLastUse buckets, ascending, measured back from now (a last bucket
	// holds what is older).
	Stats(ctx context.Context, now time.Time, ages []time.Duration) (Stats, error)

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

	// ReplaceNarInfo replaces the narinfo of a published path (hidden by
	// a quarantine or not) by new if it is still old, a compare-and-swap
	// so that what a concurrent push published is never overwritten: it
	// fails with ErrNarInfoChanged when the narinfo is no longer old, and
	// ErrNotFound when the path is not published. It changes nothing else
	// (LastUsed stays) and records the path in the change log, as Publish
	// does. Re-signing (key rollover) rewrites narinfos with it.
	ReplaceNarInfo(ctx context.Context, hashPart, old, new string) error
	// NarInfosAfter returns up to limit published paths (hidden ones
	// included) whose hash part sorts after after, in hash-part order,
	// with their narinfos.
	NarInfosAfter(ctx context.Context, after string, limit int) ([]StoredNarInfo, error)
	// ResignState returns the state of re-signing (ErrNotFound before the
	// first SaveResignState).
	ResignState(ctx context.Context) (ResignState, error)
	// SaveResignState stores s as the state of re-signing, replacing the
	// previous one.
	SaveResignState(ctx context.Context, s ResignState) error

	// Close releases the catalog's resources.
	Close() error
}

// CheckAges checks the ages given to Stats: ascending and not negative.
func CheckAges(ages []time.Duration) error {
	for i, a := range ages {
		if a < 0 || (i > 0 && a <= ages[i-1]) {
			return fmt.Errorf("stats bucket ages %v are not ascending and positive", ages)
		}
	}
	return nil
}
