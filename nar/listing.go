package nar

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
)

// ListingWriter writes the JSON .ls listing of a NAR, byte for byte as
// Nix 2.8 writes it with write-nar-listing=1, from the Headers of a Reader.
// Output is buffered; Close flushes it.
type ListingWriter struct {
	bw     *bufio.Writer
	t      tree
	num    []byte // scratch for numbers
	err    error  // sticky error from the underlying writer
	closed bool
}

// NewListingWriter returns a ListingWriter that writes to w.
func NewListingWriter(w io.Writer) *ListingWriter {
	return &ListingWriter{bw: bufio.NewWriterSize(w, 16<<10)}
}

// Add adds the node h; it takes every Header from Reader.Next, in order.
// A rejected header leaves the ListingWriter unchanged.
func (l *ListingWriter) Add(h *Header) error {
	if err := l.usable(); err != nil {
		return err
	}
	if err := checkHeader(h); err != nil {
		return err
	}
	parent, name, err := l.t.locate(h.Path)
	if err != nil {
		return err
	}
	if parent < 0 {
		l.bw.WriteString(`{"version":1,"root":`)
	} else {
		for range len(l.t.stack) - 1 - parent {
			l.bw.WriteString("}}")
		}
		if l.t.stack[parent].has {
			l.bw.WriteByte(',')
		}
		writeJSONString(l.bw, name)
		l.bw.WriteByte(':')
	}
	l.t.enter(parent, name, h.Path, h.Type)
	switch h.Type {
	case TypeRegular:
		l.bw.WriteString(`{"type":"regular","size":`)
		l.writeInt(h.Size)
		if h.Executable {
			l.bw.WriteString(`,"executable":true`)
		}
		if h.Offset != 0 { // as Nix 2.8, which never meets a zero offset
			l.bw.WriteString(`,"narOffset":`)
			l.writeInt(h.Offset)
		}
		l.bw.WriteByte('}')
	case TypeSymlink:
		l.bw.WriteString(`{"type":"symlink","target":`)
		writeJSONString(l.bw, h.LinkTarget)
		l.bw.WriteByte('}')
	case TypeDirectory:
		l.bw.WriteString(`{"type":"directory","entries":{`)
	}
	return l.check()
}

// Close ends the listing and flushes it. It does not close the underlying
// writer.
func (l *ListingWriter) Close() error {
	if l.closed && l.err == nil {
		return nil
	}
	if err := l.usable(); err != nil {
		return err
	}
	if !l.t.started {
		return fmt.Errorf("%w: no root node was added", ErrHeader)
	}
	for range l.t.stack {
		l.bw.WriteString("}}")
	}
	l.t.stack = l.t.stack[:0]
	l.bw.WriteByte('}')
	l.closed = true
	if err := l.bw.Flush(); err != nil {
		l.err = fmt.Errorf("nar: writing listing: %w", err)
		return l.err
	}
	return nil
}

// WriteListing reads the whole NAR from nar and writes its .ls listing to w.
func WriteListing(w io.Writer, nar io.Reader) error {
	r := NewReader(nar)
	l := NewListingWriter(w)
	for {
		h, err := r.Next()
		if err == io.EOF {
			return l.Close()
		}
		if err != nil {
			return err
		}
		if err := l.Add(h); err != nil {
			return err
		}
	}
}

func (l *ListingWriter) usable() error {
	if l.err != nil {
		return l.err
	}
	if l.closed {
		return ErrClosed
	}
	return nil
}

// check makes an error of the underlying writer sticky.
func (l *ListingWriter) check() error {
	if l.err == nil {
		if _, err := l.bw.Write(nil); err != nil {
			l.err = fmt.Errorf("nar: writing listing: %w", err)
		}
	}
	return l.err
}

func (l *ListingWriter) writeInt(n int64) {
	l.num = strconv.AppendInt(l.num[:0], n, 10)
	l.bw.Write(l.num)
}

// writeJSONString writes s as a JSON string the way Nix 2.8's toJSON does:
// it escapes '"' and '\\', writes \n, \r and \t, writes the other bytes
// below 0x20 as \u00XX, and copies every other byte unchanged, including
// DEL and bytes of invalid UTF-8.
func writeJSONString(bw *bufio.Writer, s string) {
	const hex = "0123456789abcdef"
	bw.WriteByte('"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		bw.WriteString(s[start:i])
		start = i + 1
		switch c {
		case '"', '\\':
			bw.WriteByte('\\')
			bw.WriteByte(c)
		case '\n':
			bw.WriteString(`\n`)
		case '\r':
			bw.WriteString(`\r`)
		case '\t':
			bw.WriteString(`\t`)
		default:
			bw.WriteString(`\u00`)
			bw.WriteByte(hex[c>>4])
			bw.WriteByte(hex[c&0xf])
		}
	}
	bw.WriteString(s[start:])
	bw.WriteByte('"')
}
