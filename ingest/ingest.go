// Package ingest turns uploads into published store paths. It is the only
// place where the cache transforms data: a NAR upload is hashed,
// decompressed, validated and (by default) recompressed to zstd in one
// streaming pass, and a narinfo upload is checked against the NAR it names
// and against the cache's contents before it is signed and published.
package ingest

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/signing"
	"github.com/nix-cached/cached/storage"
	"github.com/nix-cached/cached/storepath"
)

var (
	// ErrInvalid marks an upload that is malformed or does not match what
	// it claims; the server answers 400 with the error's text.
	ErrInvalid = errors.New("invalid upload")
	// ErrUnsupported marks an upload in a format the cache does not read.
	ErrUnsupported = errors.New("unsupported upload")

	// The causes of ErrInvalid that are worth telling apart (metrics count
	// rejections by cause); each also matches ErrInvalid.

	// ErrHashMismatch: a NAR's bytes do not hash to the name it was
	// uploaded under.
	ErrHashMismatch = fmt.Errorf("%w: file hash mismatch", ErrInvalid)
	// ErrInvalidNAR: a body that does not decompress to a valid NAR.
	ErrInvalidNAR = fmt.Errorf("%w: not a valid NAR", ErrInvalid)
	// ErrNarInfoMismatch: a narinfo whose NarHash or NarSize differ from
	// the uploaded NAR's.
	ErrNarInfoMismatch = fmt.Errorf("%w: narinfo does not match its NAR", ErrInvalid)
)

// Storage modes for NARs.
const (
	// ModeZstd stores NARs as zstd, transcoding other compressions.
	ModeZstd = "zstd"
	// ModeKeep stores NARs exactly as they were uploaded.
	ModeKeep = "keep"
)

// Options configure an Ingester.
type Options struct {
	StoreDir               string              // e.g. /nix/store
	Mode                   string              // ModeZstd (default) or ModeKeep
	ZstdLevel              int                 // zstd level for transcoding (default 3)
	Keys                   []signing.SecretKey // keys the server signs narinfos with
	RetiredKeys            []string            // key names whose signatures are removed (key rollover)
	AllowIncompleteClosure bool                // publish even when references are missing
	MaxNARSize             int64               // bound on a NAR's expanded size (default DefaultMaxNARSize)
	Now                    func() time.Time    // clock (default time.Now)
}

// Ingester verifies and publishes uploads.
type Ingester struct {
	store   storage.Store
	cat     catalog.Catalog
	opt     Options
	encoder sync.Pool // *zstd.Encoder
	lanes   lanes
}

// New returns an Ingester writing blobs to store and metadata to cat.
func New(store storage.Store, cat catalog.Catalog, opt Options) (*Ingester, error) {
	if opt.StoreDir == "" {
		opt.StoreDir = storepath.DefaultStoreDir
	}
	if err := storepath.ValidateStoreDir(opt.StoreDir); err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	if opt.MaxNARSize <= 0 {
		opt.MaxNARSize = DefaultMaxNARSize
	}
	switch opt.Mode {
	case "":
		opt.Mode = ModeZstd
	case ModeZstd, ModeKeep:
	default:
		return nil, fmt.Errorf("ingest: unknown NAR compression mode %q (want %q or %q)", opt.Mode, ModeZstd, ModeKeep)
	}
	if opt.ZstdLevel == 0 {
		opt.ZstdLevel = 3
	}
	if opt.ZstdLevel < 1 || opt.ZstdLevel > 22 {
		return nil, fmt.Errorf("ingest: zstd level %d out of range 1..22", opt.ZstdLevel)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	level := zstd.EncoderLevelFromZstd(opt.ZstdLevel)
	encOpts := []zstd.EOption{zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(level)}
	first, err := zstd.NewWriter(nil, encOpts...)
	if err != nil {
		return nil, fmt.Errorf("ingest: creating zstd encoder: %w", err)
	}
	in := &Ingester{store: store, cat: cat, opt: opt}
	in.encoder.New = func() any {
		// The options are the ones that just worked for first.
		enc, _ := zstd.NewWriter(nil, encOpts...)
		return enc
	}
	in.encoder.Put(first)
	return in, nil
}
