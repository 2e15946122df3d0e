package nar

import (
	"encoding/binary"
	"fmt"
	"io"
)

// writeBufSize is how much the Writer buffers before writing to dst;
// contents writes at least this long go straight through.
const writeBufSize = 32 << 10

// Pre-encoded token sequences.
var (
	tokMagic     = tokens(magic, "(", "type")
	tokEntry     = tokens("entry", "(", "name")
	tokNode      = tokens("node", "(", "type")
	tokRegular   = tokens("regular", "contents")
	tokExec      = tokens("regular", "executable", "", "contents")
	tokSymlink   = tokens("symlink", "target")
	tokDirectory = tokens("directory")
	tokClose     = tokens(")")
	tokClose2    = tokens(")", ")")
)

// tokens returns the NAR encoding of a sequence of strings.
func tokens(ss ...string) []byte {
	var b []byte
	for _, s := range ss {
		b = appendString(b, s)
	}
	return b
}

// appendString appends the NAR encoding of s: length, bytes, zero padding.
func appendString(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint64(b, uint64(len(s)))
	b = append(b, s...)
	return append(b, zeros[:-len(s)&7]...)
}

var zeros [8]byte

// Writer writes a NAR. Headers must come in depth-first pre-order, as
// Reader.Next returns them. Output is buffered; Close flushes it.
type Writer struct {
	dst    io.Writer
	buf    []byte
	t      tree
	remain int64 // contents bytes the current file still expects
	pad    int   // padding after the current file's contents
	inFile bool  // a regular file's closing tags are pending
	err    error // sticky error from dst
	closed bool
}

// NewWriter returns a Writer that writes a NAR to w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{dst: w, buf: make([]byte, 0, writeBufSize)}
}

// WriteHeader starts the node h. It checks that h follows the previous
// header in pre-order with a sorted, unique, valid name, and that the
// previous regular file received all its contents. A rejected header leaves
// the Writer unchanged.
func (w *Writer) WriteHeader(h *Header) error {
	if err := w.usable(); err != nil {
		return err
	}
	if w.remain > 0 {
		return fmt.Errorf("%w: %d bytes missing before %q", ErrShortContents, w.remain, h.Path)
	}
	if err := checkHeader(h); err != nil {
		return err
	}
	parent, name, err := w.t.locate(h.Path)
	if err != nil {
		return err
	}
	w.closeFile()
	if parent < 0 {
		w.buf = append(w.buf, tokMagic...)
	} else {
		for range len(w.t.stack) - 1 - parent {
			w.buf = append(w.buf, tokClose2...) // directory node, then its entry
		}
		w.buf = append(w.buf, tokEntry...)
		w.buf = appendString(w.buf, name)
		w.buf = append(w.buf, tokNode...)
	}
	w.t.enter(parent, name, h.Path, h.Type)
	switch h.Type {
	case TypeRegular:
		if h.Executable {
			w.buf = append(w.buf, tokExec...)
		} else {
			w.buf = append(w.buf, tokRegular...)
		}
		w.buf = binary.LittleEndian.AppendUint64(w.buf, uint64(h.Size))
		w.remain, w.pad, w.inFile = h.Size, int(-h.Size&7), true
	case TypeSymlink:
		w.buf = append(w.buf, tokSymlink...)
		w.buf = appendString(w.buf, h.LinkTarget)
		w.buf = append(w.buf, w.closer()...)
	case TypeDirectory:
		w.buf = append(w.buf, tokDirectory...)
	}
	return w.flushIfFull()
}

// Write writes contents of the current regular file. Writing more than its
// Size returns ErrWriteTooLong after writing what fits.
func (w *Writer) Write(p []byte) (int, error) {
	if err := w.usable(); err != nil {
		return 0, err
	}
	var tooLong bool
	if int64(len(p)) > w.remain {
		p, tooLong = p[:w.remain], true
	}
	if len(w.buf)+len(p) <= cap(w.buf) {
		w.buf = append(w.buf, p...)
	} else {
		if err := w.flush(); err != nil {
			return 0, err
		}
		if len(p) >= cap(w.buf) {
			n, err := w.dst.Write(p)
			if err == nil && n < len(p) {
				err = io.ErrShortWrite
			}
			if err != nil {
				w.remain -= int64(n)
				w.err = fmt.Errorf("nar: writing contents: %w", err)
				return n, w.err
			}
		} else {
			w.buf = append(w.buf, p...)
		}
	}
	w.remain -= int64(len(p))
	if tooLong {
		return len(p), ErrWriteTooLong
	}
	return len(p), nil
}

// Close closes every open directory and flushes the archive. It does not
// close the underlying writer.
func (w *Writer) Close() error {
	if w.closed && w.err == nil {
		return nil
	}
	if err := w.usable(); err != nil {
		return err
	}
	if !w.t.started {
		return fmt.Errorf("%w: no root node was written", ErrHeader)
	}
	if w.remain > 0 {
		return fmt.Errorf("%w: %d bytes missing at close", ErrShortContents, w.remain)
	}
	w.closeFile()
	for len(w.t.stack) > 0 {
		w.t.stack = w.t.stack[:len(w.t.stack)-1]
		w.buf = append(w.buf, w.closer()...)
	}
	w.closed = true
	return w.flush()
}

// usable returns the error that stops the Writer, if any.
func (w *Writer) usable() error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return ErrClosed
	}
	return nil
}

// closeFile appends the padding and closing tags of a completed regular file.
func (w *Writer) closeFile() {
	if !w.inFile {
		return
	}
	w.buf = append(w.buf, zeros[:w.pad]...)
	w.buf = append(w.buf, w.closer()...)
	w.inFile = false
}

// closer returns the tags that end a node at the current stack depth: its
// ")" and, below the root, the ")" of its entry.
func (w *Writer) closer() []byte {
	if len(w.t.stack) == 0 {
		return tokClose
	}
	return tokClose2
}

func (w *Writer) flushIfFull() error {
	if len(w.buf) < cap(w.buf)/2 {
		return nil
	}
	return w.flush()
}

func (w *Writer) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	n, err := w.dst.Write(w.buf)
	if err == nil && n < len(w.buf) {
		err = io.ErrShortWrite
	}
	w.buf = w.buf[:0]
	if err != nil {
		w.err = fmt.Errorf("nar: writing archive: %w", err)
		return w.err
	}
	return nil
}
