package nar

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// bufSize is the Reader's read-ahead buffer; it must hold the longest
// bounded string (a symlink target) with its length and padding.
const bufSize = 64 << 10

const magic = "nix-archive-1"

// state is where the Reader stands in the grammar between calls.
type state uint8

const (
	stStart    state = iota // before the magic
	stContents              // inside a regular file's contents
	stClosed                // the current node's ")" has been read
	stDirBody               // inside a directory, before "entry" or ")"
)

// Reader reads a NAR from an io.Reader, validating it as it goes.
type Reader struct {
	src    io.Reader
	srcErr error // first error from src, returned once buffered data runs out
	buf    []byte
	r, w   int   // unread data is buf[r:w]
	nread  int64 // bytes read from src
	err    error // sticky: io.EOF after the archive, or the first failure
	state  state
	remain int64 // contents bytes of the current file not yet consumed
	pad    int   // padding bytes after the current file's contents
	dirs
}

// NewReader returns a Reader that reads a NAR from r. It reads ahead from r,
// so r must hold nothing after the archive. The end of r before the end of
// the archive, signalled by io.EOF or io.ErrUnexpectedEOF, is a truncated
// archive (ErrInvalid); any other error from r is returned wrapped, and is
// not ErrInvalid.
func NewReader(r io.Reader) *Reader {
	return &Reader{src: r, buf: make([]byte, bufSize)}
}

// Offset returns the number of bytes of the NAR consumed so far.
func (r *Reader) Offset() int64 {
	return r.nread - int64(r.w-r.r)
}

// Next advances to the next node, in depth-first pre-order, skipping any
// unread contents of the current file. It returns io.EOF only after the root
// node is closed and the underlying reader is at EOF.
func (r *Reader) Next() (*Header, error) {
	if r.err != nil {
		return nil, r.err
	}
	h, err := r.next()
	if err != nil {
		r.err = err
		return nil, err
	}
	return h, nil
}

// Read reads contents of the current regular file. It returns io.EOF at the
// end of the contents, and for other node types.
func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.state != stContents || r.remain == 0 {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if int64(len(p)) > r.remain {
		p = p[:r.remain]
	}
	if r.r == r.w {
		if len(p) >= len(r.buf) {
			n, err := r.readSrc(p)
			r.remain -= int64(n)
			if err != nil {
				r.err = r.srcFailure(err)
				return 0, r.err
			}
			return n, nil
		}
		r.r, r.w = 0, 0
		n, err := r.readSrc(r.buf)
		r.w = n
		if err != nil {
			r.err = r.srcFailure(err)
			return 0, r.err
		}
	}
	n := copy(p, r.buf[r.r:r.w])
	r.r += n
	r.remain -= int64(n)
	return n, nil
}

func (r *Reader) next() (*Header, error) {
	switch r.state {
	case stStart:
		s, err := r.readString(maxTag, "magic")
		if err != nil {
			return nil, err
		}
		if string(s) != magic {
			return nil, r.invalid(0, "wrong magic %q", s)
		}
		return r.node("/", 0)
	case stContents:
		if err := r.finishContents(); err != nil {
			return nil, err
		}
	}
	for {
		if r.state == stClosed {
			if len(r.stack) == 0 {
				return nil, r.atEOF()
			}
			if err := r.expect(")"); err != nil { // closes the entry
				return nil, err
			}
			r.state = stDirBody
		}
		off := r.Offset()
		tag, err := r.readString(maxTag, "tag")
		if err != nil {
			return nil, err
		}
		switch string(tag) {
		case ")":
			r.stack = r.stack[:len(r.stack)-1]
			r.state = stClosed
		case "entry":
			return r.entry()
		default:
			return nil, r.invalid(off, "expected tag \"entry\" or \")\", got %q", tag)
		}
	}
}

// entry reads a directory entry after its "entry" tag, up to the node's type.
func (r *Reader) entry() (*Header, error) {
	if err := r.expect("("); err != nil {
		return nil, err
	}
	if err := r.expect("name"); err != nil {
		return nil, err
	}
	off := r.Offset()
	name, err := r.readString(maxName, "entry name")
	if err != nil {
		return nil, err
	}
	if why := badName(name); why != "" {
		return nil, r.invalid(off, "%s: %q", why, name)
	}
	f := &r.stack[len(r.stack)-1]
	if f.has && string(name) <= string(f.prev) {
		return nil, r.invalid(off, "entry %q not strictly after %q", name, f.prev)
	}
	f.prev = append(f.prev[:0], name...)
	f.has = true
	dir := r.dir(len(r.stack) - 1)
	if len(dir)+1+len(name) > MaxPath {
		return nil, r.invalid(off, "path %.64q... longer than %d bytes", dir, MaxPath)
	}
	path := string(dir) + "/" + string(name)
	if err := r.expect("node"); err != nil {
		return nil, err
	}
	return r.node(path, len(r.stack))
}

// node reads a node from its "(" up to the start of its contents (regular
// files), its ")" (symlinks) or its first entry (directories).
func (r *Reader) node(path string, depth int) (*Header, error) {
	if err := r.expect("("); err != nil {
		return nil, err
	}
	if err := r.expect("type"); err != nil {
		return nil, err
	}
	off := r.Offset()
	typ, err := r.readString(maxTag, "type")
	if err != nil {
		return nil, err
	}
	switch string(typ) {
	case "regular":
		return r.regular(path)
	case "symlink":
		if err := r.expect("target"); err != nil {
			return nil, err
		}
		off := r.Offset()
		target, err := r.readString(maxTarget, "symlink target")
		if err != nil {
			return nil, err
		}
		if why := badTarget(target); why != "" {
			return nil, r.invalid(off, "%s", why)
		}
		h := &Header{Path: path, Type: TypeSymlink, LinkTarget: string(target)}
		if err := r.expect(")"); err != nil {
			return nil, err
		}
		r.state = stClosed
		return h, nil
	case "directory":
		dir := path
		if depth == 0 {
			dir = ""
		}
		r.push(dir)
		r.state = stDirBody
		return &Header{Path: path, Type: TypeDirectory}, nil
	}
	return nil, r.invalid(off, "unknown file type %q", typ)
}

// regular reads a regular file's tags up to its contents.
func (r *Reader) regular(path string) (*Header, error) {
	h := &Header{Path: path, Type: TypeRegular}
	off := r.Offset()
	tag, err := r.readString(maxTag, "tag")
	if err != nil {
		return nil, err
	}
	if string(tag) == "executable" {
		off = r.Offset()
		if err := r.ensure(8); err != nil {
			return nil, err
		}
		if binary.LittleEndian.Uint64(r.buf[r.r:]) != 0 {
			return nil, r.invalid(off, "executable marker has a non-empty value")
		}
		r.r += 8
		h.Executable = true
		off = r.Offset()
		if tag, err = r.readString(maxTag, "tag"); err != nil {
			return nil, err
		}
	}
	if string(tag) != "contents" {
		return nil, r.invalid(off, "expected tag \"contents\", got %q", tag)
	}
	off = r.Offset()
	if err := r.ensure(8); err != nil {
		return nil, err
	}
	size := binary.LittleEndian.Uint64(r.buf[r.r:])
	if size > math.MaxInt64 {
		return nil, r.invalid(off, "contents size %d out of range", size)
	}
	r.r += 8
	h.Size = int64(size)
	h.Offset = r.Offset()
	r.remain = h.Size
	r.pad = int(-size & 7)
	r.state = stContents
	return h, nil
}

// finishContents skips unread contents, checks the padding and reads the
// regular file's closing tag.
func (r *Reader) finishContents() error {
	for r.remain > 0 {
		if r.r == r.w {
			r.r, r.w = 0, 0
			n, err := r.readSrc(r.buf)
			r.w = n
			if err != nil {
				return r.srcFailure(err)
			}
		}
		k := int(min(r.remain, int64(r.w-r.r)))
		r.r += k
		r.remain -= int64(k)
	}
	off := r.Offset()
	if err := r.ensure(r.pad); err != nil {
		return err
	}
	for _, b := range r.buf[r.r : r.r+r.pad] {
		if b != 0 {
			return r.invalid(off, "non-zero padding after contents")
		}
	}
	r.r += r.pad
	if err := r.expect(")"); err != nil {
		return err
	}
	r.state = stClosed
	return nil
}

// atEOF checks that nothing follows the root node and returns io.EOF.
func (r *Reader) atEOF() error {
	if r.r < r.w {
		return r.invalid(r.Offset(), "trailing bytes after the root node")
	}
	r.r, r.w = 0, 0
	n, err := r.readSrc(r.buf[:1])
	if n > 0 {
		r.w = n
		return r.invalid(r.Offset(), "trailing bytes after the root node")
	}
	if err == io.EOF {
		return io.EOF
	}
	return r.srcFailure(err)
}

// expect reads a tag and checks that it is want.
func (r *Reader) expect(want string) error {
	off := r.Offset()
	s, err := r.readString(maxTag, "tag")
	if err != nil {
		return err
	}
	if string(s) != want {
		return r.invalid(off, "expected tag %q, got %q", want, s)
	}
	return nil
}

// readString reads a padded string of at most max bytes. The result aliases
// the buffer and is valid until the next read.
func (r *Reader) readString(max int, what string) ([]byte, error) {
	off := r.Offset()
	if err := r.ensure(8); err != nil {
		return nil, err
	}
	n := binary.LittleEndian.Uint64(r.buf[r.r:])
	if n > uint64(max) {
		return nil, r.invalid(off, "%s of %d bytes exceeds the limit of %d", what, n, max)
	}
	size := int(n)
	pad := -size & 7
	if err := r.ensure(8 + size + pad); err != nil {
		return nil, err
	}
	s := r.buf[r.r+8 : r.r+8+size]
	for _, b := range r.buf[r.r+8+size : r.r+8+size+pad] {
		if b != 0 {
			return nil, r.invalid(off+8+int64(size), "non-zero padding after %s", what)
		}
	}
	r.r += 8 + size + pad
	return s, nil
}

// ensure makes at least n bytes available in buf[r:w].
func (r *Reader) ensure(n int) error {
	if r.w-r.r >= n {
		return nil
	}
	if r.r+n > len(r.buf) {
		r.w = copy(r.buf, r.buf[r.r:r.w])
		r.r = 0
	}
	for r.w-r.r < n {
		m, err := r.readSrc(r.buf[r.w:])
		r.w += m
		if err != nil {
			return r.srcFailure(err)
		}
	}
	return nil
}

// readSrc reads from src. It returns data (n > 0) with a nil error and
// reports a pending error on the next call.
func (r *Reader) readSrc(p []byte) (int, error) {
	for range 100 {
		if r.srcErr != nil {
			return 0, r.srcErr
		}
		n, err := r.src.Read(p)
		if n < 0 || n > len(p) {
			return 0, fmt.Errorf("nar: reader returned %d bytes for a %d-byte buffer", n, len(p))
		}
		r.nread += int64(n)
		if err != nil {
			r.srcErr = err
		}
		if n > 0 {
			return n, nil
		}
	}
	return 0, io.ErrNoProgress
}

// srcFailure turns an error from src into the Reader's error: the end of the
// input before the archive ends is a truncation (ErrInvalid); anything else
// is an I/O error, not ErrInvalid.
func (r *Reader) srcFailure(err error) error {
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: truncated at byte %d: %w", ErrInvalid, r.nread, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("nar: reading at byte %d: %w", r.nread, err)
}

// invalid returns a format error at byte offset off.
func (r *Reader) invalid(off int64, format string, args ...any) error {
	return fmt.Errorf("%w: %s at byte %d", ErrInvalid, fmt.Sprintf(format, args...), off)
}
