package gc

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/ingest"
	"github.com/nix-cached/cached/nar"
	"github.com/nix-cached/cached/nixhash"
	"github.com/nix-cached/cached/storage"
)

// checkContents re-reads a NAR file: it must hash to the record's FileHash
// and FileSize and decompress to a valid NAR with its NarHash and NarSize.
// A failure to read the file is an error, not a problem.
func checkContents(ctx context.Context, store storage.Store, n catalog.NAR) ([]string, error) {
	return checkContentsPaced(ctx, store, n, nil)
}

// checkContentsPaced is checkContents reading no faster than pace allows
// (nil: as fast as it can).
func checkContentsPaced(ctx context.Context, store storage.Store, n catalog.NAR, pace *pacer) ([]string, error) {
	f, err := store.Open(ctx, n.Key)
	if errors.Is(err, storage.ErrNotFound) {
		return []string{fmt.Sprintf("NAR file %s is missing", n.Key)}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("gc: verify: %w", err)
	}
	defer f.Close()
	src := &ctxReader{ctx: ctx, r: f, pace: pace}
	file := nixhash.NewSHA256Writer()
	raw := io.TeeReader(src, file)

	var issues []string
	enc := n.Compression
	if enc == ingest.CompNone {
		enc = "identity"
	}
	plain, closeDec, err := ingest.DecodeContentEncoding(enc, raw)
	if err == nil {
		defer closeDec()
		narSum := nixhash.NewSHA256Writer()
		if what := readNAR(io.TeeReader(plain, narSum)); what != "" {
			issues = append(issues, fmt.Sprintf("NAR file %s: %s", n.Key, what))
		} else {
			issues = append(issues, compare(n.Key, "NarHash", "NarSize", narSum, n.NarHash, n.NarSize)...)
		}
	} else if src.err == nil {
		issues = append(issues, fmt.Sprintf("NAR file %s: %v", n.Key, err))
	}
	// Hash what the decompressor left unread, so FileHash covers the file.
	if src.err == nil {
		_, err = io.Copy(io.Discard, raw)
	}
	if src.err != nil {
		return nil, fmt.Errorf("gc: verify: reading %s: %w", n.Key, src.err)
	}
	if err != nil {
		return nil, fmt.Errorf("gc: verify: reading %s: %w", n.Key, err)
	}
	return append(issues, compare(n.Key, "FileHash", "FileSize", file, n.FileHash, n.FileSize)...), nil
}

// readNAR reads a whole NAR, returning what is wrong with it or "".
func readNAR(r io.Reader) string {
	nr := nar.NewReader(r)
	for {
		_, err := nr.Next()
		if err == io.EOF {
			return ""
		}
		if err != nil {
			return fmt.Sprintf("does not decompress to a valid NAR: %v", err)
		}
	}
}

// compare checks a hash and length against a record's.
func compare(key, hashField, sizeField string, got *nixhash.SHA256Writer, wantHash string, wantSize int64) []string {
	var issues []string
	if got.Size() != wantSize {
		issues = append(issues, fmt.Sprintf("NAR file %s: %s is %d, the record says %d", key, sizeField, got.Size(), wantSize))
	}
	want, err := nixhash.Parse(wantHash)
	if err != nil {
		return append(issues, fmt.Sprintf("NAR record %s: %s: %v", key, hashField, err))
	}
	if sum := got.Sum(); sum != want {
		issues = append(issues, fmt.Sprintf("NAR file %s: %s is %s, the record says %s", key, hashField, sum, want))
	}
	return issues
}

// ctxReader stops reading when its context is done and remembers the
// first read error, so that an unreadable file is told apart from a
// corrupt one.
type ctxReader struct {
	ctx  context.Context
	r    io.Reader
	err  error
	pace *pacer
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if err := c.ctx.Err(); err != nil {
		c.err = err
		return 0, err
	}
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF {
		c.err = err
	}
	if c.pace != nil && n > 0 {
		if perr := c.pace.wait(c.ctx, int64(n)); perr != nil && c.err == nil {
			c.err, err = perr, perr
		}
	}
	return n, err
}
