package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/nix-cached/cached/auth"
	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/ingest"
	"github.com/nix-cached/cached/metrics"
	"github.com/nix-cached/cached/nar"
	"github.com/nix-cached/cached/narinfo"
	"github.com/nix-cached/cached/nixbase32"
	"github.com/nix-cached/cached/nixhash"
	"github.com/nix-cached/cached/storage"
)

// plainNAR returns a NAR of one file holding contents, and the name it is
// uploaded under uncompressed.
func plainNAR(t *testing.T, contents string) ([]byte, string) {
	t.Helper()
	var b bytes.Buffer
	w := nar.NewWriter(&b)
	if err := w.WriteHeader(&nar.Header{Path: "/", Type: nar.TypeRegular, Size: int64(len(contents))}); err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, contents)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b.Bytes())
	return b.Bytes(), nixbase32.EncodeToString(sum[:]) + ".nar"
}

// narInfoFor returns a narinfo of base naming the uncompressed NAR plain.
func narInfoFor(base string, plain []byte, name string, refs ...string) *narinfo.NarInfo {
	sum := sha256.Sum256(plain)
	return &narinfo.NarInfo{
		StorePath: "/nix/store/" + base, URL: "nar/" + name, Compression: "none",
		NarHash: nixhash.NewSHA256(sum), NarSize: uint64(len(plain)), References: refs,
	}
}

const (
	pathC      = "0f6kkr2l6dqhkbz2jz6h5jbj4ihd8wml-c"
	realisedID = "sha256:15e3c560894cbb27085cf65b5a2ecb18488c999497f4531b6907a7581ce6d527!out"
)

// TestMetricsUploads checks uploads_total and upload_rejections_total for
// accepted and refused uploads of every kind, through HTTP.
func TestMetricsUploads(t *testing.T) {
	e := newMetricsEnv(t, true)
	e.push(pathA, "published")
	other, otherName := plainNAR(t, "other contents")
	okNAR, okName := plainNAR(t, "fine")
	_, wrongName := plainNAR(t, "what the name promises")
	broken := append([]byte(nil), okNAR[:len(okNAR)-8]...)
	brokenSum := sha256.Sum256(broken)
	brokenName := nixbase32.EncodeToString(brokenSum[:]) + ".nar"
	uploadOther := func() {
		e.do("PUT", "/nar/"+otherName, pushToken, other).expect(t, 204, "PUT a NAR")
	}
	badSize := narInfoFor(pathB, other, otherName)
	badSize.NarSize++

	for _, c := range []struct {
		name    string
		setup   func()
		method  string
		path    string
		token   string
		body    []byte
		headers []string
		code    int
		kind    string
		reason  string // "" for accepted, "-" for error
	}{
		{name: "NAR", path: "/nar/" + okName, body: okNAR, code: 204, kind: "nar"},
		{name: "NAR hash mismatch", path: "/nar/" + wrongName, body: okNAR, code: 400, kind: "nar", reason: "hash-mismatch"},
		{name: "truncated NAR", path: "/nar/" + brokenName, body: broken, code: 400, kind: "nar", reason: "invalid-nar"},
		{name: "NAR with Content-Encoding", path: "/nar/" + okName, body: okNAR, headers: []string{"Content-Encoding: br"},
			code: 415, kind: "nar", reason: "unsupported-compression"},
		{name: "NAR without token", path: "/nar/" + okName, token: "-", body: okNAR, code: 401, kind: "nar", reason: "unauthorized"},
		{name: "narinfo of a NAR not uploaded", path: "/" + pathB[:32] + ".narinfo",
			body: []byte(narInfoFor(pathB, other, otherName).String()), code: 400, kind: "narinfo", reason: "nar-not-uploaded"},
		{name: "narinfo with missing references", setup: uploadOther, path: "/" + pathB[:32] + ".narinfo",
			body: []byte(narInfoFor(pathB, other, otherName, pathC).String()), code: 400, kind: "narinfo", reason: "missing-references"},
		{name: "narinfo not matching its NAR", setup: uploadOther, path: "/" + pathB[:32] + ".narinfo",
			body: []byte(badSize.String()), code: 400, kind: "narinfo", reason: "narinfo-mismatch"},
		{name: "narinfo of a published path, other contents", setup: uploadOther, path: "/" + pathA[:32] + ".narinfo",
			body: []byte(narInfoFor(pathA, other, otherName).String()), code: 409, kind: "narinfo", reason: "conflict"},
		{name: "narinfo too large", path: "/" + pathB[:32] + ".narinfo", body: bytes.Repeat([]byte("x"), maxSmallBody+1),
			code: 413, kind: "narinfo", reason: "too-large"},
		{name: "narinfo of nonsense", path: "/" + pathB[:32] + ".narinfo", body: []byte("nonsense"), code: 400, kind: "narinfo", reason: "invalid"},
		{name: "listing", path: "/" + pathA[:32] + ".ls", body: []byte(`{"version":1}`), code: 204, kind: "listing"},
		{name: "listing not JSON", path: "/" + pathA[:32] + ".ls", body: []byte("{"), code: 400, kind: "listing", reason: "invalid"},
		{name: "log", path: "/log/" + pathC + ".drv", body: []byte("build log\n"), code: 204, kind: "log"},
		{name: "realisation of a missing path", path: "/realisations/" + realisedID + ".doi",
			body: []byte(`{"id":"` + realisedID + `","outPath":"` + pathC + `","signatures":[],"dependentRealisations":{}}`),
			code: 400, kind: "realisation", reason: "missing-references"},
		{name: "debuginfo", path: "/debuginfo/" + strings.Repeat("ab", 20), body: []byte(`{"archive":"../nar/x.nar","member":"a/b"}`),
			code: 204, kind: "debuginfo"},
		{name: "realisation", path: "/realisations/" + realisedID + ".doi",
			body: []byte(`{"id":"` + realisedID + `","outPath":"` + pathA + `","signatures":[],"dependentRealisations":{}}`),
			code: 204, kind: "realisation"},
		{name: "narinfo", setup: uploadOther, path: "/" + pathB[:32] + ".narinfo",
			body: []byte(narInfoFor(pathB, other, otherName, pathA).String()), code: 204, kind: "narinfo"},
		{name: "debuginfo without member", path: "/debuginfo/" + strings.Repeat("cd", 20), body: []byte(`{"archive":"x"}`),
			code: 400, kind: "debuginfo", reason: "invalid"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.setup != nil {
				c.setup()
			}
			token := pushToken
			if c.token == "-" {
				token = ""
			}
			before := e.scrape()
			e.do("PUT", c.path, token, c.body, c.headers...).expect(t, c.code, c.name)
			after := e.scrape()
			checkUpload(t, before, after, c.kind, c.reason)
		})
	}
}

// checkUpload checks that exactly one upload of kind was counted between
// two scrapes, with reason ("" accepted, "-" error, else rejected).
func checkUpload(t *testing.T, before, after families, kind, reason string) {
	t.Helper()
	delta := func(name string, labels ...string) float64 {
		return after.get(name, labels...) - before.get(name, labels...)
	}
	result := "rejected"
	switch reason {
	case "":
		result = "accepted"
	case "-":
		result = "error"
	}
	if d := delta("cached_uploads_total"); d != 1 {
		t.Errorf("uploads_total grew by %v, want 1", d)
	}
	if d := delta("cached_uploads_total", "kind", kind, "result", result); d != 1 {
		t.Errorf("uploads_total{kind=%q,result=%q} grew by %v, want 1", kind, result, d)
	}
	want := 0.0
	if result == "rejected" {
		want = 1
		if d := delta("cached_upload_rejections_total", "kind", kind, "reason", reason); d != 1 {
			t.Errorf("upload_rejections_total{kind=%q,reason=%q} grew by %v, want 1", kind, reason, d)
		}
	}
	if d := delta("cached_upload_rejections_total"); d != want {
		t.Errorf("upload_rejections_total grew by %v, want %v", d, want)
	}
}

// brokenStore fails every upload.
type brokenStore struct{ storage.Store }

func (brokenStore) Create(context.Context) (storage.Upload, error) {
	return nil, errors.New("disk on fire")
}

func TestMetricsUploadErrors(t *testing.T) {
	e := newMetricsEnv(t, true)
	e.server().store = brokenStore{e.store}
	before := e.scrape()
	e.do("PUT", "/log/"+pathC+".drv", pushToken, []byte("log\n")).expect(t, 500, "PUT log to a broken store")
	checkUpload(t, before, e.scrape(), "log", "-")
}

// TestRejectionOf covers the typed errors rejectionOf knows, as ingest and
// the server wrap them (the ingest messages are covered through HTTP).
func TestRejectionOf(t *testing.T) {
	missing := &catalog.MissingReferencesError{HashParts: []string{pathC[:32]}}
	for _, c := range []struct {
		kind metrics.Kind
		err  error
		want metrics.Reason
	}{
		{metrics.KindNAR, fmt.Errorf("auth: %w", auth.ErrUnauthorized), metrics.ReasonUnauthorized},
		{metrics.KindLog, fmt.Errorf("%w: reading the request body: %w", errBadRequest, &http.MaxBytesError{Limit: 1}), metrics.ReasonTooLarge},
		{metrics.KindNAR, &http.MaxBytesError{Limit: 1}, metrics.ReasonTooLarge},
		{metrics.KindNAR, fmt.Errorf("%w: NAR compression %q", ingest.ErrUnsupported, "lz4"), metrics.ReasonUnsupportedCompression},
		{metrics.KindNarInfo, fmt.Errorf("x: %w", catalog.ErrConflict), metrics.ReasonConflict},
		// As ingest wraps the catalog's errors.
		{metrics.KindNarInfo, fmt.Errorf("%w: %w", ingest.ErrInvalid, missing), metrics.ReasonMissingReferences},
		{metrics.KindNarInfo, fmt.Errorf("%w: %w", ingest.ErrInvalid, catalog.ErrNARNotFound), metrics.ReasonNARNotUploaded},
		{metrics.KindNAR, fmt.Errorf("%w: body hashes to x", ingest.ErrHashMismatch), metrics.ReasonHashMismatch},
		{metrics.KindNAR, fmt.Errorf("%w: zstd: corrupt", ingest.ErrInvalidNAR), metrics.ReasonInvalidNAR},
		{metrics.KindNarInfo, fmt.Errorf("%w: NarSize differs", ingest.ErrNarInfoMismatch), metrics.ReasonNarInfoMismatch},
		{metrics.KindRealisation, fmt.Errorf("%w: realisation is not JSON", ingest.ErrInvalid), metrics.ReasonInvalid},
		{metrics.KindListing, fmt.Errorf("%w: listing is not JSON", errBadRequest), metrics.ReasonInvalid},
		{metrics.KindLog, fmt.Errorf("x: %w", storage.ErrInvalidKey), metrics.ReasonInvalid},
		{metrics.KindLog, errors.New("something else"), metrics.ReasonOther},
	} {
		if got := rejectionOf(c.err); got != c.want {
			t.Errorf("rejectionOf(%v, %q) = %v, want %v", c.kind, c.err, got, c.want)
		}
	}
}
