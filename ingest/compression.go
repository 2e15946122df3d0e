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

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"

	"github.com/nix-cached/cached/nixhash"
)

// Compression labels, as written in narinfo Compression fields and as
// Nix's compression= setting names them. Nix 2.34 can write all of these
// (through libarchive, but for br); lrzip, grzip and lzop need external
// programs that Nix does not ship, and compress (.Z) has no maintained
// decoder in Go, so those two kinds are refused with a clear reason.
const (
	CompNone   = "none"
	CompXZ     = "xz"
	CompZstd   = "zstd"
	CompBzip2  = "bzip2"
	CompGzip   = "gzip"
	CompBrotli = "br"
	CompLZ4    = "lz4"
	CompLzip   = "lzip"
	CompLZMA   = "lzma"
)

// extensions maps a NAR file name's extension to the compressions it may
// hold. Nix names only xz, bzip2, zstd, lzip, lz4 and br files with an
// extension of their own; every other compression gets a plain ".nar"
// (protocol.md §9), so those are told apart by their first bytes.
var extensions = map[string][]string{
	".nar":      {CompNone, CompGzip, CompLZMA},
	".nar.xz":   {CompXZ},
	".nar.zst":  {CompZstd},
	".nar.bz2":  {CompBzip2},
	".nar.br":   {CompBrotli},
	".nar.lz4":  {CompLZ4},
	".nar.lzip": {CompLzip},
}

// extensionOf returns the file extension Nix gives a compression.
func extensionOf(comp string) string {
	for ext, comps := range extensions {
		if ext != ".nar" && comps[0] == comp {
			return ext
		}
	}
	return ".nar"
}

// narMagic is the start of every uncompressed NAR: u64 13, "nix-archive-1".
var narMagic = []byte("\x0d\x00\x00\x00\x00\x00\x00\x00nix-archive-1")

// magics are the first bytes of each compressed format that has them
// (brotli has none). An LZMA header starts with its properties, 0x5d for
// the lc=3 lp=0 pb=2 that every encoder uses, then a dictionary size
// whose two low bytes are zero for the power-of-two sizes presets use.
var magics = []struct {
	comp  string
	magic string
}{
	{CompXZ, "\xfd7zXZ\x00"},
	{CompZstd, "\x28\xb5\x2f\xfd"},
	{CompBzip2, "BZh"},
	{CompGzip, "\x1f\x8b"},
	{CompLZ4, "\x04\x22\x4d\x18"},
	{CompLzip, "LZIP"},
	{CompLZMA, "\x5d\x00\x00"},
}

// sniff tells the compression of a stream named with extension ext from
// its first bytes.
func sniff(br *bufio.Reader, ext string) (string, error) {
	if ext == ".nar.br" {
		return CompBrotli, nil // no magic: the decoder and the NAR reader check it
	}
	head, err := br.Peek(len(narMagic))
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return "", err
	}
	if bytes.HasPrefix(head, narMagic) {
		return CompNone, nil
	}
	for _, m := range magics {
		if bytes.HasPrefix(head, []byte(m.magic)) {
			return m.comp, nil
		}
	}
	if bytes.HasPrefix(head, []byte("\x1f\x9d")) {
		return "", fmt.Errorf("%w: compress (.Z) data; push with compression=zstd, xz or any other that Nix offers", ErrUnsupported)
	}
	return "", fmt.Errorf("%w: body is neither a NAR nor data compressed with xz, zstd, bzip2, gzip, lz4, lzip or lzma", ErrUnsupported)
}

// zstdDecoders keeps zstd decoders for reuse: each one holds several MiB
// of buffers that would otherwise be allocated per upload.
var zstdDecoders sync.Pool

// maxZstdWindow bounds the memory a hostile zstd stream can make us use.
const maxZstdWindow = 128 << 20

// maxLZMADict bounds the dictionary an lzma or lzip stream may ask for:
// the decoder allocates all of it up front. The largest preset of xz and
// lzip (-9) uses 64 and 32 MiB; Nix uses libarchive's default, 8 MiB.
const maxLZMADict = 64 << 20

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
	case CompBrotli:
		return brotli.NewReader(r), func() {}, nil
	case CompLZ4:
		return lz4.NewReader(r), func() {}, nil
	case CompLZMA:
		lr, err := lzma.ReaderConfig{DictCap: maxLZMADict}.NewReader(r)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: lzma: %v", ErrInvalidNAR, err)
		}
		return lr, func() {}, nil
	case CompLzip:
		return newLzipReader(r), func() {}, nil
	}
	return nil, nil, fmt.Errorf("%w: compression %q", ErrUnsupported, comp)
}

// DecodeContentEncoding undoes a Content-Encoding that Nix ≥ 2.32 puts on
// narinfo, listing and log uploads (narinfo-compression and friends): the
// name of any compression it can write, the literal "none" among them.
func DecodeContentEncoding(enc string, r io.Reader) (io.Reader, func(), error) {
	switch comp := strings.ToLower(strings.TrimSpace(enc)); comp {
	case "", "identity", CompNone:
		return r, func() {}, nil
	case "x-gzip":
		return decompress(CompGzip, r)
	case CompGzip, CompZstd, CompXZ, CompBzip2, CompBrotli, CompLZ4, CompLzip, CompLZMA:
		return decompress(comp, r)
	}
	return nil, nil, fmt.Errorf("%w: Content-Encoding %q (use one of none, gzip, zstd, xz, bzip2, br, lz4, lzip or lzma)", ErrUnsupported, enc)
}

// FileName is the name Nix gives a NAR file with this FileHash and
// Compression ("" means bzip2, as in Nix), which NAR accepts.
func FileName(fileHash nixhash.Hash, compression string) (string, error) {
	if compression == "" {
		compression = CompBzip2
	}
	if fileHash.Algo() != nixhash.SHA256 {
		return "", fmt.Errorf("%w: FileHash must be sha256", ErrInvalid)
	}
	name := fileHash.Nix32() + extensionOf(compression)
	if _, _, err := ParseNARName(name); err != nil {
		return "", err
	}
	return name, nil
}
