// Package nar reads and writes Nix archives (NAR) and their .ls listings.
//
// The API is shaped like archive/tar: a Reader yields one Header per file
// system object in depth-first pre-order and streams regular file contents;
// a Writer takes Headers in the same order. Both use constant memory apart
// from the stack of open directories, which MaxPath bounds.
// The Reader accepts only the canonical form that Nix writes, with the
// strictest rules of current Nix (see protocol.md §5).
package nar

import (
	"errors"
	"fmt"
)

// ErrInvalid is wrapped by every error that reports a malformed archive.
var ErrInvalid = errors.New("nar: invalid archive")

// ErrHeader is wrapped by errors for a Header that Writer or ListingWriter
// cannot place in the archive.
var ErrHeader = errors.New("nar: invalid header")

// ErrWriteTooLong is returned by Writer.Write when the data exceeds the
// Size declared by the current Header.
var ErrWriteTooLong = errors.New("nar: write too long")

// ErrShortContents is returned when a Header or Close arrives before the
// current regular file received all the bytes its Size declared.
var ErrShortContents = errors.New("nar: file contents shorter than declared")

// ErrClosed is returned by writes after Close.
var ErrClosed = errors.New("nar: write after close")

// MaxPath is the longest path of a node inside an archive ("/a/b"), in
// bytes. Nix 2.8 dumps and restores a path by its absolute name (lstat,
// mkdir and open of dstPath + path in src/libutil/archive.cc), which Linux
// refuses beyond PATH_MAX (4096 bytes with the NUL): no archive that Nix
// made or can unpack has a longer path, even without the store directory
// in front of it. It also bounds the nesting (2047 directories of
// one-byte names) and so the memory of the stack of open directories. Nix
// 2.34 refuses archives nested 64 directories deep or more (narMaxDepth),
// which Nix 2.8 builds and pushes, so there is no depth limit here: a
// cache must take every path its clients push.
const MaxPath = 4095

// Bounds on declared string lengths, as in Nix ≥ 2.35.
const (
	maxTag    = 32   // every keyword is at most 10 bytes; Nix allows 32
	maxName   = 255  // entry names
	maxTarget = 4095 // symlink targets
)

// Type is the kind of a file system object in a NAR.
type Type uint8

// The three kinds of node a NAR can hold.
const (
	TypeRegular   Type = iota + 1 // a file with contents and an executable bit
	TypeDirectory                 // a directory of named entries
	TypeSymlink                   // a symbolic link with a target
)

// String returns the NAR keyword for t.
func (t Type) String() string {
	switch t {
	case TypeRegular:
		return "regular"
	case TypeDirectory:
		return "directory"
	case TypeSymlink:
		return "symlink"
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// Header describes one node of a NAR.
type Header struct {
	Path       string // "/" for the root, "/bin", "/bin/x" below it
	Type       Type
	Executable bool   // regular files
	Size       int64  // regular files: contents length
	Offset     int64  // regular files: offset in the NAR of the first contents byte (the .ls narOffset); ignored by Writer
	LinkTarget string // symlinks
}

// badName returns why name cannot be a directory entry name, or "".
func badName[S ~string | ~[]byte](name S) string {
	switch {
	case len(name) == 0:
		return "empty entry name"
	case len(name) > maxName:
		return "entry name longer than 255 bytes"
	case string(name) == "." || string(name) == "..":
		return "entry name is . or .."
	}
	for i := 0; i < len(name); i++ {
		switch name[i] {
		case '/':
			return "entry name contains a slash"
		case 0:
			return "entry name contains a NUL byte"
		}
	}
	return ""
}

// badTarget returns why target cannot be a symlink target, or "".
func badTarget[S ~string | ~[]byte](target S) string {
	switch {
	case len(target) == 0:
		return "empty symlink target"
	case len(target) > maxTarget:
		return "symlink target longer than 4095 bytes"
	}
	for i := 0; i < len(target); i++ {
		if target[i] == 0 {
			return "symlink target contains a NUL byte"
		}
	}
	return ""
}

// checkHeader validates the fields of h that do not depend on its position.
func checkHeader(h *Header) error {
	why := ""
	switch h.Type {
	case TypeRegular:
		if h.Size < 0 {
			why = "negative size"
		} else if h.LinkTarget != "" {
			why = "link target on a regular file"
		}
	case TypeSymlink:
		why = badTarget(h.LinkTarget)
		if why == "" && (h.Size != 0 || h.Executable) {
			why = "size or executable bit on a symlink"
		}
	case TypeDirectory:
		if h.Size != 0 || h.Executable || h.LinkTarget != "" {
			why = "size, executable bit or link target on a directory"
		}
	default:
		why = "unknown type " + h.Type.String()
	}
	if why != "" {
		return fmt.Errorf("%w: %q: %s", ErrHeader, h.Path, why)
	}
	return nil
}

// frame is an open directory. Its path is dirs.path[:dirLen]: the open
// directories are each other's prefixes, so one buffer holds them all.
type frame struct {
	dirLen int    // 0 for the root, len("/a/b") below it
	prev   []byte // name of the last entry, if has
	has    bool
}

// dirs is the stack of open directories.
type dirs struct {
	stack []frame
	path  []byte // the deepest open directory's path
}

// dir returns the path of the open directory i ("" for the root).
func (d *dirs) dir(i int) []byte { return d.path[:d.stack[i].dirLen] }

// push opens the directory at path ("" for the root), which lies in the
// deepest open one, reusing the name buffer of a frame popped earlier at
// the same level.
func (d *dirs) push(path string) {
	d.path = append(d.path[:0], path...)
	n := len(d.stack)
	if n == cap(d.stack) {
		d.stack = append(d.stack, frame{dirLen: len(path)})
		return
	}
	d.stack = d.stack[:n+1]
	d.stack[n] = frame{dirLen: len(path), prev: d.stack[n].prev[:0]}
}

// tree checks that Headers arrive in depth-first pre-order with sorted,
// unique names, as Writer and ListingWriter need.
type tree struct {
	dirs
	started bool
}

// locate checks that path may be the next node and returns the index of its
// parent frame (-1 for the root) and its entry name.
func (t *tree) locate(path string) (parent int, name string, err error) {
	if !t.started {
		if path != "/" {
			return 0, "", fmt.Errorf("%w: %q: the first header must be the root \"/\"", ErrHeader, path)
		}
		return -1, "", nil
	}
	if len(t.stack) == 0 {
		return 0, "", fmt.Errorf("%w: %q: the root node is complete", ErrHeader, path)
	}
	i := len(path) - 1
	for i >= 0 && path[i] != '/' {
		i--
	}
	if i < 0 {
		return 0, "", fmt.Errorf("%w: %q: path is not absolute", ErrHeader, path)
	}
	dir, name := path[:i], path[i+1:]
	if why := badName(name); why != "" {
		return 0, "", fmt.Errorf("%w: %q: %s", ErrHeader, path, why)
	}
	if len(path) > MaxPath {
		return 0, "", fmt.Errorf("%w: %.64q...: path longer than %d bytes", ErrHeader, path, MaxPath)
	}
	parent = len(t.stack) - 1
	for parent >= 0 && string(t.dir(parent)) != dir {
		parent--
	}
	if parent < 0 {
		return 0, "", fmt.Errorf("%w: %q: parent directory is not open (headers out of order)", ErrHeader, path)
	}
	if f := &t.stack[parent]; f.has && string(f.prev) >= name {
		return 0, "", fmt.Errorf("%w: %q: names not strictly increasing after %q", ErrHeader, path, f.prev)
	}
	return parent, name, nil
}

// enter records a node that locate accepted, after the caller closed the
// frames above parent.
func (t *tree) enter(parent int, name string, path string, typ Type) {
	t.started = true
	if parent >= 0 {
		t.stack = t.stack[:parent+1]
		f := &t.stack[parent]
		f.prev = append(f.prev[:0], name...)
		f.has = true
	}
	if typ == TypeDirectory {
		if parent < 0 {
			path = ""
		}
		t.push(path)
	}
}
