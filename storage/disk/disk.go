// Package disk is a storage.Store that keeps each object in its own file
// under a root directory. Uploads go to a temporary file that is synced and
// renamed into place, so a crash at any instant leaves either the old object
// or the new one visible, never a partial file.
//
// Key "nar/abc.nar.zst" lives in ROOT/nar/<xx>/abc.nar.zst, where <xx> is a
// shard directory named by a hash of the basename. Every file sits directly
// in a shard directory, so a key whose directory path is another key's file
// path ("a" with shard "ab", and "ab/a/b") cannot be stored; Commit of the
// second fails.
package disk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/nix-cached/cached/storage"
)

// ErrUploadClosed is returned by Write or Commit on an upload that was
// already committed, aborted or failed.
var ErrUploadClosed = errors.New("disk: upload already committed or aborted")

// ErrInvalidRoot is returned by New for an empty root or one that is not a
// directory.
var ErrInvalidRoot = errors.New("disk: invalid root directory")

// staleAge is the age after which New removes a temporary file: it was
// left by a crash.
const staleAge = time.Hour

// Store is a storage.Store in a directory. Every access goes through an
// os.Root, so neither keys nor symlinks planted in the directory can reach
// files outside it.
type Store struct {
	root *os.Root
}

var (
	_ storage.Store         = (*Store)(nil)
	_ storage.SpaceReporter = (*Store)(nil)
)

// New opens the store in root, creating root and its temporary directory if
// needed and removing temporary files more than an hour old.
func New(root string) (*Store, error) {
	if root == "" {
		return nil, fmt.Errorf("%w: empty path", ErrInvalidRoot)
	}
	if err := os.MkdirAll(filepath.Join(root, tmpDir), 0o755); err != nil {
		if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("%w: %w", ErrInvalidRoot, err)
		}
		return nil, fmt.Errorf("disk: creating store: %w", err)
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("disk: opening store: %w", err)
	}
	s := &Store{root: r}
	if err := s.removeStale(time.Now().Add(-staleAge)); err != nil {
		r.Close()
		return nil, err
	}
	return s, nil
}

// removeStale removes the temporary files last modified before cutoff.
func (s *Store) removeStale(cutoff time.Time) error {
	d, err := s.root.Open(tmpDir)
	if err != nil {
		return fmt.Errorf("disk: cleaning temporary files: %w", err)
	}
	entries, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return fmt.Errorf("disk: cleaning temporary files: %w", err)
	}
	for _, e := range entries {
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("disk: cleaning temporary files: %w", err)
		}
		if !info.Mode().IsRegular() || !info.ModTime().Before(cutoff) {
			continue
		}
		if err := s.root.Remove(tmpDir + "/" + e.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("disk: removing stale temporary file: %w", err)
		}
	}
	return nil
}

// Open returns the object's file, an *os.File, positioned at its start.
func (s *Store) Open(ctx context.Context, key string) (io.ReadSeekCloser, error) {
	if err := check(ctx, "open", key); err != nil {
		return nil, err
	}
	f, err := s.root.Open(keyPath(key))
	if err != nil {
		return nil, wrap("open", key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, wrap("open", key, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("disk: open %s: %w", key, storage.ErrNotFound)
	}
	return f, nil
}

// Stat reports the size and modification time of the object's file.
func (s *Store) Stat(ctx context.Context, key string) (storage.Info, error) {
	if err := check(ctx, "stat", key); err != nil {
		return storage.Info{}, err
	}
	fi, err := s.root.Stat(keyPath(key))
	if err != nil {
		return storage.Info{}, wrap("stat", key, err)
	}
	if !fi.Mode().IsRegular() {
		return storage.Info{}, fmt.Errorf("disk: stat %s: %w", key, storage.ErrNotFound)
	}
	return storage.Info{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Delete removes the object's file, if there is one.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := check(ctx, "delete", key); err != nil {
		return err
	}
	p := keyPath(key)
	fi, err := s.root.Lstat(p)
	if err == nil && fi.IsDir() {
		return nil // a directory is no object
	}
	if err == nil {
		err = s.root.Remove(p)
	}
	if err != nil && !isNotExist(err) {
		return wrap("delete", key, err)
	}
	return nil
}

// Close releases the root directory. Files already opened stay readable.
func (s *Store) Close() error {
	if err := s.root.Close(); err != nil {
		return fmt.Errorf("disk: close: %w", err)
	}
	return nil
}

// check validates key and ctx before op.
func check(ctx context.Context, op, key string) error {
	if err := storage.ValidateKey(key); err != nil {
		return fmt.Errorf("disk: %s: %w", op, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("disk: %s %s: %w", op, key, err)
	}
	return nil
}

// wrap names op and key in err, and turns "no such file" into
// storage.ErrNotFound.
func wrap(op, key string, err error) error {
	if isNotExist(err) {
		return fmt.Errorf("disk: %s %s: %w", op, key, storage.ErrNotFound)
	}
	return fmt.Errorf("disk: %s %s: %w", op, key, err)
}

// isNotExist reports whether err means that a path names nothing, including
// a path through a regular file.
func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// Space reports the bytes free for an unprivileged writer and the size of
// the file system holding the store.
func (s *Store) Space() (free, capacity int64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(s.root.Name(), &st); err != nil {
		return 0, 0, fmt.Errorf("disk: free space: %w", err)
	}
	return int64(st.Bavail) * st.Bsize, int64(st.Blocks) * st.Bsize, nil
}
