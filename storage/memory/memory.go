// Package memory is a storage.Store that keeps objects in a map, for tests.
package memory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/nix-cached/cached/storage"
)

// ErrUploadClosed is returned by Write or Commit on an upload that was
// already committed, aborted or failed.
var ErrUploadClosed = errors.New("memory: upload already committed or aborted")

// object is an immutable stored blob.
type object struct {
	data    []byte
	modTime time.Time
}

// Store is an in-memory storage.Store. The zero value is not usable; call New.
type Store struct {
	mu      sync.RWMutex
	objects map[string]object
}

var _ storage.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{objects: make(map[string]object)}
}

// Create starts an upload buffered in memory. The upload fails once ctx is
// done.
func (s *Store) Create(ctx context.Context) (storage.Upload, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory: create: %w", err)
	}
	return &upload{store: s, ctx: ctx}, nil
}

// Open returns a reader over the object at key.
func (s *Store) Open(ctx context.Context, key string) (io.ReadSeekCloser, error) {
	o, err := s.get(ctx, "open", key)
	if err != nil {
		return nil, err
	}
	return readSeekNopCloser{bytes.NewReader(o.data)}, nil
}

// Stat reports the size and commit time of the object at key.
func (s *Store) Stat(ctx context.Context, key string) (storage.Info, error) {
	o, err := s.get(ctx, "stat", key)
	if err != nil {
		return storage.Info{}, err
	}
	return storage.Info{Key: key, Size: int64(len(o.data)), ModTime: o.modTime}, nil
}

// get looks key up for op.
func (s *Store) get(ctx context.Context, op, key string) (object, error) {
	if err := storage.ValidateKey(key); err != nil {
		return object{}, fmt.Errorf("memory: %s: %w", op, err)
	}
	if err := ctx.Err(); err != nil {
		return object{}, fmt.Errorf("memory: %s %s: %w", op, key, err)
	}
	s.mu.RLock()
	o, ok := s.objects[key]
	s.mu.RUnlock()
	if !ok {
		return object{}, fmt.Errorf("memory: %s %s: %w", op, key, storage.ErrNotFound)
	}
	return o, nil
}

// Delete removes the object at key, if any.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := storage.ValidateKey(key); err != nil {
		return fmt.Errorf("memory: delete: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: delete %s: %w", key, err)
	}
	s.mu.Lock()
	delete(s.objects, key)
	s.mu.Unlock()
	return nil
}

// List calls fn for every object whose key starts with prefix. fn runs
// without the store's lock held, on a snapshot taken when List began.
func (s *Store) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: list %q: %w", prefix, err)
	}
	s.mu.RLock()
	var infos []storage.Info
	for k, o := range s.objects {
		if strings.HasPrefix(k, prefix) {
			infos = append(infos, storage.Info{Key: k, Size: int64(len(o.data)), ModTime: o.modTime})
		}
	}
	s.mu.RUnlock()
	for _, info := range infos {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("memory: list %q: %w", prefix, err)
		}
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

// Close does nothing; the store stays usable.
func (s *Store) Close() error { return nil }

// readSeekNopCloser adds a no-op Close to a bytes.Reader.
type readSeekNopCloser struct{ *bytes.Reader }

// Close does nothing.
func (readSeekNopCloser) Close() error { return nil }

// upload buffers an object until Commit.
type upload struct {
	store *Store
	ctx   context.Context // the upload's lifetime, from Create
	mu    sync.Mutex
	buf   bytes.Buffer
	done  bool // committed, aborted or failed
}

// Write appends p to the upload.
func (u *upload) Write(p []byte) (int, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.done {
		return 0, ErrUploadClosed
	}
	if err := u.ctx.Err(); err != nil {
		u.discard()
		return 0, fmt.Errorf("memory: write: %w", err)
	}
	return u.buf.Write(p)
}

// Commit stores the bytes written under key. Any failure discards the upload.
func (u *upload) Commit(ctx context.Context, key string) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.done {
		return fmt.Errorf("memory: commit %s: %w", key, ErrUploadClosed)
	}
	if err := storage.ValidateKey(key); err != nil {
		u.discard()
		return fmt.Errorf("memory: commit: %w", err)
	}
	for _, c := range []context.Context{ctx, u.ctx} {
		if err := c.Err(); err != nil {
			u.discard()
			return fmt.Errorf("memory: commit %s: %w", key, err)
		}
	}
	data := u.buf.Bytes()
	u.discard()
	u.store.mu.Lock()
	u.store.objects[key] = object{data: data, modTime: time.Now()}
	u.store.mu.Unlock()
	return nil
}

// Abort discards the upload; it is a no-op once the upload has ended.
func (u *upload) Abort() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if !u.done {
		u.discard()
	}
	return nil
}

// discard ends the upload and drops its buffer. u.mu must be held.
func (u *upload) discard() {
	u.done = true
	u.buf = bytes.Buffer{}
}
