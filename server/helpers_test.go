package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ulikunitz/xz"

	"github.com/nix-cached/cached/auth"
	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/catalog/sqlite"
	"github.com/nix-cached/cached/ingest"
	"github.com/nix-cached/cached/nar"
	"github.com/nix-cached/cached/narinfo"
	"github.com/nix-cached/cached/nixbase32"
	"github.com/nix-cached/cached/nixhash"
	"github.com/nix-cached/cached/signing"
	"github.com/nix-cached/cached/storage"
	"github.com/nix-cached/cached/storage/disk"
	"github.com/nix-cached/cached/usage"
)

const (
	adminToken = "admin-secret-0123456789"
	pushToken  = "push-secret-0123456789"
	readToken  = "read-secret-0123456789"
)

// lockedBuffer collects log output from concurrent handlers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// env is a server over a disk store and a SQLite catalog.
type env struct {
	t     testing.TB
	srv   *httptest.Server
	cat   catalog.Catalog
	store storage.Store
	key   signing.SecretKey
	logs  *lockedBuffer
	usage *usage.Recorder
}

// parts is a Server over a disk store and a SQLite catalog in a temporary
// directory, closed when the test ends.
type parts struct {
	s     *Server
	ing   *ingest.Ingester
	cat   catalog.Catalog
	store storage.Store
	key   signing.SecretKey
	usage *usage.Recorder // records uses at the time usageAt returns
}

// usageAt is the clock of the use recorders of test servers.
var usageAt = time.Now

// newParts builds parts with the test tokens; reads are public or need
// readToken. Request logs go to logs.
func newParts(tb testing.TB, publicRead bool, logs io.Writer, opts ...func(*Config)) parts {
	tb.Helper()
	dir := tb.TempDir()
	store, err := disk.New(filepath.Join(dir, "blobs"))
	if err != nil {
		tb.Fatal(err)
	}
	cat, err := sqlite.Open(context.Background(), filepath.Join(dir, "catalog.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		cat.Close()
		store.Close()
	})
	key, err := signing.GenerateKey("server-test-1", nil)
	if err != nil {
		tb.Fatal(err)
	}
	ing, err := ingest.New(store, cat, ingest.Options{Keys: []signing.SecretKey{key}})
	if err != nil {
		tb.Fatal(err)
	}
	cfg := auth.Config{AdminTokens: []string{adminToken}, PushTokens: []string{pushToken}, PublicRead: publicRead}
	if !publicRead {
		cfg.ReadTokens = []string{readToken}
	}
	rec := usage.New(cat, func() time.Time { return usageAt() }, nil)
	sc := Config{Priority: 30, WantMassQuery: true, PublicKeys: []signing.PublicKey{key.Public()},
		Usage: rec, Logger: slog.New(slog.NewTextHandler(logs, nil))}
	for _, o := range opts {
		o(&sc)
	}
	s, err := New(sc, cat, store, ing, auth.New(cfg, cat))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Wait) // before the catalog closes
	return parts{s: s, ing: ing, cat: cat, store: store, key: key, usage: rec}
}

func newEnv(t testing.TB, publicRead bool) *env {
	t.Helper()
	logs := &lockedBuffer{}
	p := newParts(t, publicRead, logs)
	e := &env{t: t, srv: httptest.NewServer(p.s), cat: p.cat, store: p.store, key: p.key, logs: logs, usage: p.usage}
	t.Cleanup(e.srv.Close)
	return e
}

// zeros52 is a well-formed but absent file hash.
var zeros52 = strings.Repeat("0", 52)

// regexpMatch reports whether pattern matches s.
func regexpMatch(pattern, s string) bool { return regexp.MustCompile(pattern).MatchString(s) }

// response is what a request returned.
type response struct {
	code   int
	header http.Header
	body   string
}

// do sends a request; token "" sends none. Extra headers are "Name: value"
// ("Host: h" sets the request's Host).
func (e *env) do(method, path, token string, body []byte, headers ...string) response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.SetBasicAuth("nix", token)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		if k == "Host" {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, string(b)}
}

// expect fails the test unless r has the given status.
func (r response) expect(t testing.TB, code int, what string) response {
	t.Helper()
	if r.code != code {
		t.Fatalf("%s: status %d, want %d (%s)", what, r.code, code, strings.TrimSpace(r.body))
	}
	return r
}

// pushed is a path pushed through the HTTP API.
type pushed struct {
	base    string // hash-name
	plain   []byte // the NAR
	file    []byte // the NAR as uploaded (xz)
	xzName  string // the name its NAR was uploaded under
	narinfo narinfo.NarInfo
}

// push uploads a NAR (xz) and its narinfo the way nix copy does.
func (e *env) push(base string, contents string, refs ...string) pushed {
	e.t.Helper()
	p := e.prepare(base, contents, refs...)
	e.do("PUT", "/nar/"+p.xzName, pushToken, p.file, "Content-Type: application/x-nix-nar").expect(e.t, 204, "PUT NAR")
	e.do("PUT", "/"+base[:32]+".narinfo", pushToken, []byte(p.narinfo.String())).expect(e.t, 204, "PUT narinfo")
	return p
}

// prepare makes the NAR (xz) and narinfo of a path holding contents,
// without uploading them.
func (e *env) prepare(base string, contents string, refs ...string) pushed {
	e.t.Helper()
	var plain bytes.Buffer
	w := nar.NewWriter(&plain)
	if err := w.WriteHeader(&nar.Header{Path: "/", Type: nar.TypeRegular, Size: int64(len(contents))}); err != nil {
		e.t.Fatal(err)
	}
	io.WriteString(w, contents)
	if err := w.Close(); err != nil {
		e.t.Fatal(err)
	}
	var file bytes.Buffer
	xw, _ := xz.NewWriter(&file)
	xw.Write(plain.Bytes())
	xw.Close()
	fsum := sha256.Sum256(file.Bytes())
	nsum := sha256.Sum256(plain.Bytes())
	name := nixbase32.EncodeToString(fsum[:]) + ".nar.xz"
	ni := narinfo.NarInfo{
		StorePath: "/nix/store/" + base, URL: "nar/" + name, Compression: "xz",
		FileHash: nixhash.NewSHA256(fsum), FileSize: uint64(file.Len()),
		NarHash: nixhash.NewSHA256(nsum), NarSize: uint64(plain.Len()), References: refs,
	}
	return pushed{base: base, plain: plain.Bytes(), file: file.Bytes(), xzName: name, narinfo: ni}
}
