// Package storage keeps blobs by key. Drivers are dumb stores of bytes:
// they know nothing of Nix, hashes or layouts. Verification and naming live
// one layer up, in the ingest and server packages.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// ErrNotFound is returned when a key holds no object.
var ErrNotFound = errors.New("storage: object not found")

// ErrInvalidKey is returned for a key that ValidateKey rejects.
var ErrInvalidKey = errors.New("storage: invalid key")

// Info describes a stored object.
type Info struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// Store is a blob store. Every method is safe for concurrent use.
type Store interface {
	// Create starts an upload. Nothing written to it is visible under any
	// key until Commit returns nil.
	Create(ctx context.Context) (Upload, error)
	// Open returns a reader positioned at the start of the object.
	// The disk driver returns an *os.File so that net/http can use sendfile.
	Open(ctx context.Context, key string) (io.ReadSeekCloser, error)
	// Stat reports an object's size and modification time. It returns an
	// error wrapping ErrNotFound only when the object is known to be
	// absent; any other error means "could not tell".
	Stat(ctx context.Context, key string) (Info, error)
	// Delete removes an object. Deleting an absent key succeeds.
	Delete(ctx context.Context, key string) error
	// List calls fn for every object whose key starts with prefix, in no
	// particular order. An error from fn stops the listing and is returned.
	List(ctx context.Context, prefix string, fn func(Info) error) error
	// Close releases the driver's resources.
	Close() error
}

// Upload is an object being written. Exactly one of Commit or Abort ends it;
// Abort after a successful Commit is a no-op, so `defer u.Abort()` is safe.
type Upload interface {
	io.Writer
	// Commit makes the bytes written so far visible under key, atomically
	// replacing any object already there. A reader sees the old object or
	// the new one, never a mixture or a prefix.
	Commit(ctx context.Context, key string) error
	// Abort discards the upload.
	Abort() error
}

// Presigner is implemented by drivers whose objects a client can fetch
// directly, without the bytes passing through the server (S3).
type Presigner interface {
	// PresignGet returns a URL that serves the object for ttl. It does not
	// check that the object exists.
	PresignGet(ctx context.Context, key string, ttl time.Duration) (string, error)
}

// SpaceReporter is implemented by drivers on a file system: Space
// reports the bytes free for the cache and the file system's size.
type SpaceReporter interface {
	Space() (free, capacity int64, err error)
}

// KeyedCreator is implemented by drivers that do less work when an
// upload's key is known as it starts (S3: a large upload goes straight to
// its key instead of being copied there at Commit). Such an upload must be
// committed under that key.
type KeyedCreator interface {
	CreateFor(ctx context.Context, key string) (Upload, error)
}

// CreateFor starts an upload that will be committed under key, through the
// driver's KeyedCreator if it has one and Create otherwise.
func CreateFor(ctx context.Context, s Store, key string) (Upload, error) {
	if kc, ok := s.(KeyedCreator); ok {
		return kc.CreateFor(ctx, key)
	}
	return s.Create(ctx)
}

// Put stores the whole of r under key atomically.
func Put(ctx context.Context, s Store, key string, r io.Reader) (int64, error) {
	if err := ValidateKey(key); err != nil {
		return 0, err
	}
	u, err := CreateFor(ctx, s, key)
	if err != nil {
		return 0, err
	}
	defer u.Abort() //nolint:errcheck // no-op after Commit
	n, err := io.Copy(u, r)
	if err != nil {
		return n, fmt.Errorf("storage: writing %s: %w", key, err)
	}
	if err := u.Commit(ctx, key); err != nil {
		return n, err
	}
	return n, nil
}

// ValidateKey checks that key is a relative slash-separated name whose
// segments use only [A-Za-z0-9._+=:!-], do not start with a dot, and are not
// empty. Drivers call it on every key, so no key can name anything outside
// the store (no "..", no absolute paths, no hidden temp files).
func ValidateKey(key string) error {
	if key == "" || len(key) > 1024 {
		return fmt.Errorf("%w: %q", ErrInvalidKey, key)
	}
	segStart := true
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c == '/':
			if segStart {
				return fmt.Errorf("%w: empty segment in %q", ErrInvalidKey, key)
			}
			segStart = true
			continue
		case c == '.':
			if segStart {
				return fmt.Errorf("%w: segment starts with a dot in %q", ErrInvalidKey, key)
			}
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '_', c == '+', c == '=', c == ':', c == '!', c == '-':
		default:
			return fmt.Errorf("%w: character %q in %q", ErrInvalidKey, c, key)
		}
		segStart = false
	}
	if segStart {
		return fmt.Errorf("%w: trailing slash in %q", ErrInvalidKey, key)
	}
	return nil
}
