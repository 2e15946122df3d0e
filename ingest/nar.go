package ingest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/nar"
	"github.com/nix-cached/cached/nixbase32"
	"github.com/nix-cached/cached/nixhash"
	"github.com/nix-cached/cached/storage"
)

// ParseNARName splits a NAR file name as Nix uploads it,
// "<nix32 sha256 of the file>.nar[.xz|.zst|.bz2]", into the file hash it
// claims and its extension.
func ParseNARName(name string) (nixhash.Hash, string, error) {
	const hashLen = 52
	if len(name) < hashLen+len(".nar") || name[hashLen] != '.' {
		return nixhash.Hash{}, "", fmt.Errorf("%w: NAR name %q is not <nix32 sha256>.nar[.ext]", ErrInvalid, name)
	}
	ext := name[hashLen:]
	if _, ok := extensions[ext]; !ok {
		if strings.HasPrefix(ext, ".nar.") {
			return nixhash.Hash{}, "", fmt.Errorf("%w: NAR compression %q (use zstd, xz, bzip2, gzip, br, lz4, lzip, lzma or none)", ErrUnsupported, ext)
		}
		return nixhash.Hash{}, "", fmt.Errorf("%w: NAR name %q is not <nix32 sha256>.nar[.ext]", ErrInvalid, name)
	}
	var sum [32]byte
	if n, err := nixbase32.Decode(sum[:], []byte(name[:hashLen])); err != nil || n != len(sum) {
		return nixhash.Hash{}, "", fmt.Errorf("%w: NAR name %q does not start with a nix32 sha256", ErrInvalid, name)
	}
	return nixhash.NewSHA256(sum), ext, nil
}

// errReader remembers the first error of the upload body, so that a client
// hanging up is told apart from malformed data.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

// errWriter remembers the first error of a storage write.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	if err != nil && e.err == nil {
		e.err = err
	}
	return n, err
}

// NAR ingests a NAR uploaded as name ("<nix32>.nar.xz"): it checks that the
// body hashes to the name, that it decompresses to a valid NAR, stores it
// (as zstd unless the mode is keep or it already is zstd) with its .ls
// listing, and records it in the catalog as unclaimed until a narinfo names
// it. size is the Content-Length, or -1 if unknown.
func (in *Ingester) NAR(ctx context.Context, name string, body io.Reader, size int64) (catalog.NAR, error) {
	return in.nar(ctx, name, body, size, nil)
}

// Expect is what a NAR from elsewhere (an upstream cache) must turn out to
// be, for NARExpecting.
type Expect struct {
	NarHash nixhash.Hash
	NarSize int64
	Keep    bool // store it as it came, whatever the Ingester's mode
	// Verified, when set, is called once the NAR proved to be what was
	// expected, before it is committed (the commit's syncs then need not
	// delay whoever waits for the verdict).
	Verified func()
}

// NARExpecting is NAR for a NAR whose NarHash and NarSize are known in
// advance: one that differs is refused (ErrNarInfoMismatch) before
// anything is committed.
func (in *Ingester) NARExpecting(ctx context.Context, name string, body io.Reader, size int64, exp Expect) (catalog.NAR, error) {
	return in.nar(ctx, name, body, size, &exp)
}

// nar is NAR, checking what exp expects when it is not nil.
func (in *Ingester) nar(ctx context.Context, name string, body io.Reader, size int64, exp *Expect) (catalog.NAR, error) {
	want, ext, err := ParseNARName(name)
	if err != nil {
		return catalog.NAR{}, err
	}
	src := &errReader{r: body}
	received := &countingReader{r: src}
	br := bufio.NewReaderSize(received, 256<<10)
	comp, err := sniff(br, ext)
	if err != nil {
		return catalog.NAR{}, in.classify(ctx, err, src, nil)
	}
	if !slices.Contains(extensions[ext], comp) {
		return catalog.NAR{}, fmt.Errorf("%w: NAR named %s holds %s data", ErrInvalid, name, comp)
	}
	keep := in.opt.Mode == ModeKeep || comp == CompZstd || (exp != nil && exp.Keep)

	var blob storage.Upload
	if keep {
		// Stored as uploaded, under the name it was uploaded as: S3 can
		// then write it in place instead of copying it there at Commit.
		blob, err = storage.CreateFor(ctx, in.store, "nar/"+name)
	} else {
		blob, err = in.store.Create(ctx)
	}
	if err != nil {
		return catalog.NAR{}, err
	}
	defer blob.Abort() //nolint:errcheck // no-op after Commit
	lsBlob, err := in.store.Create(ctx)
	if err != nil {
		return catalog.NAR{}, err
	}
	defer lsBlob.Abort() //nolint:errcheck // no-op after Commit
	sink := &errWriter{w: blob}
	lsSink := &errWriter{w: lsBlob}

	upload, stored, narSum := nixhash.NewSHA256Writer(), nixhash.NewSHA256Writer(), nixhash.NewSHA256Writer()
	var raw io.Writer = upload
	var narSide io.Writer = narSum
	if comp == CompNone {
		// The upload is the NAR: hash it once.
		narSum, narSide = upload, io.Discard
	}
	var enc *zstd.Encoder
	if keep {
		raw = io.MultiWriter(upload, sink)
	} else {
		enc = in.encoder.Get().(*zstd.Encoder)
		enc.Reset(io.MultiWriter(sink, stored))
		defer func() { enc.Reset(nil); in.encoder.Put(enc) }()
		narSide = io.MultiWriter(narSide, enc)
	}
	compressed := io.TeeReader(br, raw)
	plain, closeDec, err := decompress(comp, compressed)
	if err != nil {
		return catalog.NAR{}, in.classify(ctx, err, src, sink)
	}
	defer closeDec()
	bounded := &expansion{ctx: ctx, r: plain, in: received, max: in.opt.MaxNARSize,
		free: freeExpansion, ratio: maxFreeRatio, lanes: &in.lanes}
	defer bounded.close()

	lsBuf := bufio.NewWriterSize(lsSink, 32<<10)
	lw := nar.NewListingWriter(lsBuf)
	nr := nar.NewReader(io.TeeReader(bounded, narSide))
	for {
		h, err := nr.Next()
		if err == io.EOF {
			break
		}
		if err == nil {
			err = lw.Add(h)
		}
		if err != nil {
			return catalog.NAR{}, in.classify(ctx, err, src, sink, lsSink)
		}
	}
	// The decompressor has seen the end of its stream; anything after it
	// in the body would be hashed but not validated.
	if n, err := io.Copy(io.Discard, compressed); err != nil || n > 0 {
		if err == nil {
			err = fmt.Errorf("%w: %d bytes after the end of the %s stream", ErrInvalidNAR, n, comp)
		}
		return catalog.NAR{}, in.classify(ctx, err, src, sink)
	}
	if err := lw.Close(); err != nil {
		return catalog.NAR{}, in.classify(ctx, err, src, lsSink)
	}
	if err := lsBuf.Flush(); err != nil {
		return catalog.NAR{}, in.classify(ctx, err, src, lsSink)
	}
	if size >= 0 && upload.Size() != size {
		return catalog.NAR{}, fmt.Errorf("%w: body has %d bytes, Content-Length said %d", ErrInvalid, upload.Size(), size)
	}
	if got := upload.Sum(); got != want {
		return catalog.NAR{}, fmt.Errorf("%w: body hashes to %s but was uploaded as %s", ErrHashMismatch, got, name)
	}
	if exp != nil && (narSum.Sum() != exp.NarHash || narSum.Size() != exp.NarSize) {
		return catalog.NAR{}, fmt.Errorf("%w: the NAR is %s (%d bytes), its narinfo says %s (%d bytes)",
			ErrNarInfoMismatch, narSum.Sum(), narSum.Size(), exp.NarHash, exp.NarSize)
	}
	if exp != nil && exp.Verified != nil {
		exp.Verified()
	}

	n := catalog.NAR{
		NarHash:   narSum.Sum().String(),
		NarSize:   narSum.Size(),
		CreatedAt: in.opt.Now(),
	}
	if keep {
		n.Key, n.Compression = "nar/"+name, comp
		n.FileHash, n.FileSize = want.String(), upload.Size()
	} else {
		if err := enc.Close(); err != nil {
			return catalog.NAR{}, in.classify(ctx, err, src, sink)
		}
		sum := stored.Sum()
		n.Key, n.Compression = "nar/"+sum.Nix32()+extensionOf(CompZstd), CompZstd
		n.FileHash, n.FileSize = sum.String(), stored.Size()
	}
	n.ListingKey = "ls/" + narSum.Sum().Nix32() + ".ls"
	if err := in.commit(ctx, n, "nar/"+name, blob, lsBlob); err != nil {
		return catalog.NAR{}, err
	}
	return n, nil
}

// commit makes the blobs visible, then records the NAR: a catalog record
// never names a blob that is not there. The pending record taken first
// keeps any deletion (GC, the lease sweep, in this process or another) off
// these keys while they are being written; if one is under way, commit
// waits a little for it to finish.
func (in *Ingester) commit(ctx context.Context, n catalog.NAR, alias string, blob, lsBlob storage.Upload) error {
	if err := in.beginNAR(ctx, n.Key, n.ListingKey); err != nil {
		return err
	}
	// The two blobs are independent: committing them side by side lets
	// their syncs share the disk's flushes (or S3's round trips).
	lsDone := make(chan error, 1)
	go func() { lsDone <- lsBlob.Commit(ctx, n.ListingKey) }()
	err := blob.Commit(ctx, n.Key)
	lsErr := <-lsDone
	if err != nil {
		return fmt.Errorf("ingest: storing %s: %w", n.Key, err)
	}
	if lsErr != nil {
		return fmt.Errorf("ingest: storing %s: %w", n.ListingKey, lsErr)
	}
	var aliases []string
	if alias != n.Key {
		aliases = append(aliases, alias)
	}
	if err := in.cat.PutNAR(ctx, n, aliases...); err != nil {
		return fmt.Errorf("ingest: recording %s: %w", n.Key, err)
	}
	return nil
}

// busyWait bounds how long an upload waits for a deletion of the same blob
// (which takes milliseconds) before giving up with a retryable error.
const busyWait = 10 * time.Second

// beginNAR takes the pending record, retrying while a deletion of the same
// blob is under way.
func (in *Ingester) beginNAR(ctx context.Context, key, listingKey string) error {
	deadline := time.Now().Add(busyWait)
	for delay := 10 * time.Millisecond; ; delay = min(2*delay, time.Second) {
		err := in.cat.BeginNAR(ctx, key, listingKey, in.opt.Now())
		if err == nil {
			return nil
		}
		if !errors.Is(err, catalog.ErrBusy) || time.Now().Add(delay).After(deadline) {
			return fmt.Errorf("ingest: recording %s: %w", key, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
	}
}

// classify decides whose fault a failed ingest was: a storage write (kept
// as is, a server error), the client's body (truncated, too large, hung
// up), the context, or malformed data (ErrInvalid).
func (in *Ingester) classify(ctx context.Context, err error, src *errReader, sinks ...*errWriter) error {
	for _, s := range sinks {
		if s != nil && s.err != nil {
			return fmt.Errorf("ingest: writing to storage: %w", s.err)
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if src.err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(src.err, &tooBig) {
			return src.err
		}
		return fmt.Errorf("%w: reading the body: %v", ErrInvalid, src.err)
	}
	if errors.Is(err, ErrInvalid) || errors.Is(err, ErrUnsupported) || errors.Is(err, ErrTooLarge) {
		return err
	}
	// No I/O failed, so the decompressor or the NAR reader rejected the data.
	return fmt.Errorf("%w: %v", ErrInvalidNAR, err)
}
