package ingest

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"

	"github.com/ulikunitz/xz/lzma"
)

// An lzip file (what Nix writes with compression=lzip) is one or more
// members, each a 6-byte header ("LZIP", version 1, a coded dictionary
// size), a raw LZMA stream with lc=3 lp=0 pb=2 ending in an end marker,
// and a 20-byte trailer: the CRC32 and size of the data, and the member's
// size. The LZMA decoder reads exactly the stream's bytes, so the trailer
// follows on the same reader. (The lzip package for Go reads a whole
// member into memory first; NARs can be many GiB.)
const (
	lzipHeaderLen  = 6
	lzipTrailerLen = 20
)

// lzipReader decodes an lzip file as it is read, checking every member's
// trailer.
type lzipReader struct {
	src    *bufio.Reader
	dec    *lzma.Reader
	crc    hash.Hash32
	size   uint64 // of this member's data
	member uint64 // compressed bytes of this member read so far
	err    error
}

func newLzipReader(r io.Reader) *lzipReader {
	return &lzipReader{src: bufio.NewReaderSize(r, 64<<10), crc: crc32.NewIEEE()}
}

// errLzip marks what is wrong with an lzip stream.
func errLzip(format string, args ...any) error {
	return fmt.Errorf("%w: lzip: %s", ErrInvalidNAR, fmt.Sprintf(format, args...))
}

func (z *lzipReader) Read(p []byte) (int, error) {
	for z.err == nil {
		if z.dec == nil {
			z.err = z.startMember()
			continue
		}
		n, err := z.dec.Read(p)
		z.crc.Write(p[:n])
		z.size += uint64(n)
		if err == io.EOF {
			err = z.endMember()
		} else if err != nil {
			err = errLzip("%v", err)
		}
		z.err = err
		if n > 0 || err != nil {
			return n, err
		}
	}
	return 0, z.err
}

// startMember reads a member's header and starts its LZMA decoder.
func (z *lzipReader) startMember() error {
	var h [lzipHeaderLen]byte
	if _, err := io.ReadFull(z.src, h[:]); err != nil {
		return errLzip("header: %v", err)
	}
	if !bytes.Equal(h[:4], []byte("LZIP")) || h[4] != 1 {
		return errLzip("not an lzip version 1 member")
	}
	dict := uint32(1) << (h[5] & 0x1f)
	dict -= dict / 16 * uint32(h[5]>>5)
	if dict < 1<<12 || dict > maxLZMADict {
		return errLzip("dictionary of %d bytes (at most %d)", dict, maxLZMADict)
	}
	// A classic LZMA header for the raw stream: properties, dictionary
	// size, and an unknown data size (the stream has an end marker).
	var lh [lzma.HeaderLen]byte
	lh[0] = 0x5d // lc=3 lp=0 pb=2
	binary.LittleEndian.PutUint32(lh[1:5], dict)
	binary.LittleEndian.PutUint64(lh[5:], ^uint64(0))
	z.member = lzipHeaderLen
	dec, err := lzma.ReaderConfig{DictCap: maxLZMADict}.NewReader(&prefixedByteReader{prefix: lh[:], r: z.src, n: &z.member})
	if err != nil {
		return errLzip("%v", err)
	}
	z.dec = dec
	z.crc.Reset()
	z.size = 0
	return nil
}

// endMember checks a member's trailer, then tells whether another member
// follows (nil) or the file ended (io.EOF).
func (z *lzipReader) endMember() error {
	var t [lzipTrailerLen]byte
	if _, err := io.ReadFull(z.src, t[:]); err != nil {
		return errLzip("trailer: %v", err)
	}
	switch {
	case binary.LittleEndian.Uint32(t[0:4]) != z.crc.Sum32():
		return errLzip("CRC mismatch")
	case binary.LittleEndian.Uint64(t[4:12]) != z.size:
		return errLzip("data size mismatch")
	case binary.LittleEndian.Uint64(t[12:20]) != z.member+lzipTrailerLen:
		return errLzip("member size mismatch")
	}
	z.dec = nil
	if _, err := z.src.Peek(1); errors.Is(err, io.EOF) {
		return io.EOF
	} else if err != nil {
		return errLzip("%v", err)
	}
	return nil // the next member's header is checked when it is read
}

// prefixedByteReader yields prefix, then r's bytes one at a time, counting
// those taken from r. The LZMA decoder reads bytes only through ReadByte,
// so none of r's bytes past the stream's end are consumed.
type prefixedByteReader struct {
	prefix []byte
	r      *bufio.Reader
	n      *uint64
}

func (p *prefixedByteReader) ReadByte() (byte, error) {
	if len(p.prefix) > 0 {
		b := p.prefix[0]
		p.prefix = p.prefix[1:]
		return b, nil
	}
	b, err := p.r.ReadByte()
	if err == nil {
		*p.n++
	}
	return b, err
}

func (p *prefixedByteReader) Read(b []byte) (int, error) {
	if len(p.prefix) > 0 {
		n := copy(b, p.prefix)
		p.prefix = p.prefix[n:]
		return n, nil
	}
	if len(b) == 0 {
		return 0, nil
	}
	c, err := p.ReadByte()
	if err != nil {
		return 0, err
	}
	b[0] = c
	return 1, nil
}
