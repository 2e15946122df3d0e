package ingest

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Compression labels, as written in narinfo Compression fields.
const (
	CompNone  = "none"
	CompXZ    = "xz"
	CompZstd  = "zstd"
	CompBzip2 = "bzip2"
	CompGzip  = "gzip"
)

// extensions maps a NAR file name's extension to the compressions it may
// hold. Nix names gzip-compressed NARs plain ".nar" (protocol.md §9).
var extensions = map[string][]string{
	".nar":     {CompNone, CompGzip},
	".nar.xz":  {CompXZ},
	".nar.zst": {CompZstd},
	".nar.bz2": {CompBzip2},
}

// extensionOf returns the file extension Nix gives a compression.
func extensionOf(comp string) string {
	switch comp {
	case CompXZ:
		return ".nar.xz"
	case CompZstd:
		return ".nar.zst"
	case CompBzip2:
		return ".nar.bz2"
	default:
		return ".nar"
	}
}

// narMagic is the start of every uncompressed NAR: u64 13, "nix-archive-1".
var narMagic = []byte("\x0d\x00\x00\x00\x00\x00\x00\x00nix-archive-1")

// sniff tells the compression of a stream from its first bytes.
func sniff(br *bufio.Reader) (string, error) {
	head, err := br.Peek(len(narMagic))
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return "", err
	}
	switch {
	case bytes.HasPrefix(head, narMagic):
		return CompNone, nil
	case bytes.HasPrefix(head, []byte("\xfd7zXZ\x00")):
		return CompXZ, nil
	case bytes.HasPrefix(head, []byte("\x28\xb5\x2f\xfd")):
		return CompZstd, nil
	case bytes.HasPrefix(head, []byte("BZh")):
		return CompBzip2, nil
	case bytes.HasPrefix(head, []byte("\x1f\x8b")):
		return CompGzip, nil
	}
	return "", fmt.Errorf("%w: body is neither a NAR nor xz, zstd, bzip2 or gzip data", ErrUnsupported)
}

// zstdDecoders keeps zstd decoders for reuse: each one holds several MiB
// of buffers that would otherwise be allocated per upload.
var zstdDecoders sync.Pool

// maxZstdWindow bounds the memory a hostile zstd stream can make us use.
const maxZstdWindow = 128 << 20

// decompress wraps r in a decompressor for comp. The returned close
// function releases decoder resources.
func decompress(comp string, r io.Reader) (io.Reader, func(), error) {
	switch comp {
	case CompNone:
		return r, func() {}, nil
	case CompXZ:
		xr, err := xz.NewReader(r)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: xz: %v", ErrInvalidNAR, err)
		}
		return xr, func() {}, nil
	case CompZstd:
		zr, ok := zstdDecoders.Get().(*zstd.Decoder)
		if !ok {
			var err error
			zr, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
				zstd.WithDecoderMaxWindow(maxZstdWindow))
			if err != nil {
				return nil, nil, fmt.Errorf("ingest: creating zstd decoder: %w", err)
			}
		}
		if err := zr.Reset(r); err != nil {
			zstdDecoders.Put(zr)
			return nil, nil, fmt.Errorf("%w: zstd: %v", ErrInvalidNAR, err)
		}
		return zr, func() {
			zr.Reset(nil) //nolint:errcheck // only drops the reference to r
			zstdDecoders.Put(zr)
		}, nil
	case CompBzip2:
		return bzip2.NewReader(r), func() {}, nil
	case CompGzip:
		gr, err := gzip.NewReader(r)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: gzip: %v", ErrInvalidNAR, err)
		}
		return gr, func() { gr.Close() }, nil
	}
	return nil, nil, fmt.Errorf("%w: compression %q", ErrUnsupported, comp)
}

// DecodeContentEncoding undoes a Content-Encoding that Nix ≥ 2.32 puts on
// narinfo, listing and log uploads (narinfo-compression and friends).
func DecodeContentEncoding(enc string, r io.Reader) (io.Reader, func(), error) {
	switch strings.ToLower(strings.TrimSpace(enc)) {
	case "", "identity":
		return r, func() {}, nil
	case "gzip", "x-gzip":
		return decompress(CompGzip, r)
	case "zstd":
		return decompress(CompZstd, r)
	case "xz":
		return decompress(CompXZ, r)
	case "bzip2":
		return decompress(CompBzip2, r)
	}
	return nil, nil, fmt.Errorf("%w: Content-Encoding %q", ErrUnsupported, enc)
}
