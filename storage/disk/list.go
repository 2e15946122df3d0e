package disk

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/nix-cached/cached/storage"
)

// List calls fn for every object whose key starts with prefix. It walks only
// the directories that can hold such keys, skips the temporary directory
// and never follows symbolic links.
func (s *Store) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("disk: list %q: %w", prefix, err)
	}
	start := "."
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = prefix[:i]
		if storage.ValidateKey(start) != nil {
			return nil // no valid key has such a directory
		}
		ok, err := s.isRealDir(start)
		if err != nil {
			return fmt.Errorf("disk: list %q: %w", prefix, err)
		}
		if !ok {
			return nil
		}
	}
	err := fs.WalkDir(s.root.FS(), start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if isNotExist(err) {
				return nil // removed while we walked
			}
			return fmt.Errorf("disk: list %q: %w", prefix, err)
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("disk: list %q: %w", prefix, err)
		}
		if d.IsDir() {
			if p == start {
				return nil
			}
			if strings.HasPrefix(d.Name(), ".") || !mayHold(p, prefix) {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil // symlinks and other oddities are no objects
		}
		key, ok := pathKey(p)
		if !ok || !strings.HasPrefix(key, prefix) {
			return nil
		}
		fi, err := d.Info()
		if isNotExist(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("disk: list %q: %s: %w", prefix, key, err)
		}
		if err := fn(storage.Info{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
			return fnError{err}
		}
		return nil
	})
	var fe fnError
	if errors.As(err, &fe) {
		return fe.err
	}
	return err
}

// fnError carries an error from List's fn through fs.WalkDir, which would
// otherwise take fs.SkipDir or fs.SkipAll from fn as an instruction.
type fnError struct{ err error }

// Error returns fn's error message.
func (e fnError) Error() string { return e.err.Error() }

// isRealDir reports whether the slash-separated path dir is a directory
// reached without passing through a symbolic link.
func (s *Store) isRealDir(dir string) (bool, error) {
	for i := 0; i <= len(dir); i++ {
		if i < len(dir) && dir[i] != '/' {
			continue
		}
		fi, err := s.root.Lstat(dir[:i])
		if isNotExist(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if !fi.IsDir() {
			return false, nil
		}
	}
	return true, nil
}
