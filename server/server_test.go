package server

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"

	"github.com/nix-cached/cached/nar"
	"github.com/nix-cached/cached/narinfo"
	"github.com/nix-cached/cached/signing"
	"github.com/nix-cached/cached/storage"
)

const (
	pathA = "7rjj86a15146cq1d3qy068lml7n8ykzm-a"
	pathB = "5sbpggnbip0823i5hiz50vgjqgq7kd7c-b"
)

func TestCacheInfo(t *testing.T) {
	e := newEnv(t, true)
	r := e.do("GET", "/nix-cache-info", "", nil).expect(t, 200, "GET")
	if r.body != "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 30\n" {
		t.Fatalf("nix-cache-info: %q", r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "text/x-nix-cache-info" {
		t.Errorf("Content-Type %q", ct)
	}
	if h := e.do("HEAD", "/nix-cache-info", "", nil).expect(t, 200, "HEAD"); h.body != "" || h.header.Get("Content-Length") != fmt.Sprint(len(r.body)) {
		t.Errorf("HEAD: %q, Content-Length %q", h.body, h.header.Get("Content-Length"))
	}
	e.do("PUT", "/nix-cache-info", "", []byte("StoreDir: /x\n")).expect(t, 401, "PUT without a token")
	e.do("PUT", "/nix-cache-info", pushToken, []byte("StoreDir: /x\n")).expect(t, 204, "PUT")
	if again := e.do("GET", "/nix-cache-info", "", nil); again.body != r.body {
		t.Errorf("a PUT replaced nix-cache-info: %q", again.body)
	}
	e.do("DELETE", "/nix-cache-info", pushToken, nil).expect(t, 405, "DELETE")
	if got := e.do("GET", "/public-key", "", nil).expect(t, 200, "public key").body; got != e.key.Public().String()+"\n" {
		t.Errorf("/public-key: %q", got)
	}
}

func TestNarInfoAndNAR(t *testing.T) {
	e := newEnv(t, true)
	p := e.push(pathA, strings.Repeat("hello nix\n", 5000))
	r := e.do("GET", "/"+pathA[:32]+".narinfo", "", nil).expect(t, 200, "GET narinfo")
	if ct := r.header.Get("Content-Type"); ct != "text/x-nix-narinfo" {
		t.Errorf("Content-Type %q", ct)
	}
	h := e.do("HEAD", "/"+pathA[:32]+".narinfo", "", nil).expect(t, 200, "HEAD narinfo")
	if h.body != "" || h.header.Get("Content-Length") != fmt.Sprint(len(r.body)) {
		t.Errorf("HEAD narinfo: body %q, Content-Length %q", h.body, h.header.Get("Content-Length"))
	}
	ni, err := narinfo.Parse([]byte(r.body))
	if err != nil {
		t.Fatal(err)
	}
	fp, _ := ni.AppendFingerprint(nil)
	if ok, err := signing.VerifyAny([]signing.PublicKey{e.key.Public()}, fp, ni.Sigs); !ok || err != nil {
		t.Fatalf("served narinfo is not signed by the server: %v\n%s", err, r.body)
	}

	// Misses: GET and HEAD agree, never touch storage, and are not cached.
	for _, m := range []string{"GET", "HEAD"} {
		miss := e.do(m, "/"+pathB[:32]+".narinfo", "", nil).expect(t, 404, m+" miss")
		if miss.header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s miss Cache-Control %q", m, miss.header.Get("Cache-Control"))
		}
	}
	e.do("GET", "/notahash.narinfo", "", nil).expect(t, 400, "invalid hash")

	// The NAR: whole, ranged, conditional, HEAD.
	whole := e.do("GET", "/"+ni.URL, "", nil).expect(t, 200, "GET NAR")
	if int64(len(whole.body)) != int64(ni.FileSize) || whole.header.Get("Content-Length") != fmt.Sprint(ni.FileSize) {
		t.Fatalf("NAR is %d bytes (Content-Length %s), narinfo says %d", len(whole.body), whole.header.Get("Content-Length"), ni.FileSize)
	}
	for k, v := range map[string]string{
		"Content-Type": "application/x-nix-nar", "Accept-Ranges": "bytes",
		"Cache-Control": "public, max-age=31536000, immutable", "ETag": `"` + ni.URL[4:56] + `"`,
	} {
		if got := whole.header.Get(k); got != v {
			t.Errorf("NAR %s: %q, want %q", k, got, v)
		}
	}
	if whole.header.Get("Content-Encoding") != "" {
		t.Error("a NAR was served with a Content-Encoding")
	}
	part := e.do("GET", "/"+ni.URL, "", nil, "Range: bytes=10-19").expect(t, 206, "Range")
	if part.body != whole.body[10:20] || part.header.Get("Content-Range") != fmt.Sprintf("bytes 10-19/%d", ni.FileSize) {
		t.Errorf("Range: %q, Content-Range %q", part.body, part.header.Get("Content-Range"))
	}
	tail := e.do("GET", "/"+ni.URL, "", nil, "Range: bytes=5-").expect(t, 206, "open Range")
	if tail.body != whole.body[5:] {
		t.Error("open-ended Range returned the wrong bytes")
	}
	e.do("GET", "/"+ni.URL, "", nil, "If-None-Match: "+whole.header.Get("ETag")).expect(t, 304, "If-None-Match")
	if hd := e.do("HEAD", "/"+ni.URL, "", nil).expect(t, 200, "HEAD NAR"); hd.body != "" || hd.header.Get("Content-Length") != fmt.Sprint(ni.FileSize) {
		t.Error("HEAD NAR")
	}
	// The name the client uploaded (xz) is not a stored file.
	e.do("HEAD", "/nar/"+p.xzName, "", nil).expect(t, 404, "HEAD of the uploaded name")
	e.do("GET", "/nar/"+strings.Repeat("0", 52)+".nar.zst", "", nil).expect(t, 404, "missing NAR")
	e.do("GET", "/nar/passwd", "", nil).expect(t, 400, "bad NAR name")

	// The listing computed from the NAR.
	var ls bytes.Buffer
	if err := nar.WriteListing(&ls, bytes.NewReader(p.plain)); err != nil {
		t.Fatal(err)
	}
	if got := e.do("GET", "/"+pathA[:32]+".ls", "", nil).expect(t, 200, "GET .ls"); got.body != ls.String() {
		t.Errorf(".ls: %s, want %s", got.body, ls.String())
	}
	e.do("PUT", "/"+pathA[:32]+".ls", pushToken, []byte(`{"version":1,"root":{}}`), "Content-Type: application/json").expect(t, 204, "PUT .ls")
	e.do("PUT", "/"+pathA[:32]+".ls", pushToken, []byte(`{nope`)).expect(t, 400, "PUT bad .ls")
	e.do("GET", "/"+pathB[:32]+".ls", "", nil).expect(t, 404, ".ls miss")
}

func TestForgedUploads(t *testing.T) {
	e := newEnv(t, true)
	good := e.push(pathA, "genuine")
	oneLine := regexp.MustCompile(`^[^\n]+\n$`)
	check := func(r response, what string) {
		t.Helper()
		if r.code < 400 || r.code >= 500 || !oneLine.MatchString(r.body) {
			t.Errorf("%s: %d %q, want a 4xx with one line of reason", what, r.code, r.body)
		}
	}
	// A NAR whose bytes do not hash to its name.
	check(e.do("PUT", "/nar/"+strings.Repeat("1", 52)+".nar", pushToken, good.plain), "NAR under a false name")
	// A narinfo naming a NAR that was never uploaded.
	ni := good.narinfo
	ni.StorePath = "/nix/store/" + pathB
	ni.URL = "nar/" + strings.Repeat("2", 52) + ".nar.xz"
	check(e.do("PUT", "/"+pathB[:32]+".narinfo", pushToken, []byte(ni.String())), "narinfo naming a missing NAR")
	// A narinfo that does not match the NAR it names.
	ni = good.narinfo
	ni.StorePath = "/nix/store/" + pathB
	ni.NarSize++
	check(e.do("PUT", "/"+pathB[:32]+".narinfo", pushToken, []byte(ni.String())), "narinfo with a wrong NarSize")
	// A narinfo with a reference the cache lacks.
	ni = good.narinfo
	ni.StorePath = "/nix/store/" + pathB
	ni.References = []string{"0rm3pvqy4sikbwkvg5py1msvar18859y-c"}
	check(e.do("PUT", "/"+pathB[:32]+".narinfo", pushToken, []byte(ni.String())), "narinfo with a missing reference")
	check(e.do("PUT", "/"+pathB[:32]+".narinfo", pushToken, []byte("StorePath: /etc/passwd\n")), "garbage narinfo")
	e.do("GET", "/"+pathB[:32]+".narinfo", "", nil).expect(t, 404, "after forged uploads")
	for _, bad := range []string{"/nar/..%2F..%2Fetc%2Fpasswd", "/log/..%2F..%2Fetc%2Fpasswd", "/nar/.tmp"} {
		check(e.do("PUT", bad, pushToken, []byte("x")), "PUT "+bad)
		if r := e.do("GET", bad, "", nil); r.code != 400 && r.code != 404 {
			t.Errorf("GET %s: %d", bad, r.code)
		}
	}
	// A body larger than any narinfo.
	e.do("PUT", "/"+pathB[:32]+".narinfo", pushToken, bytes.Repeat([]byte("x"), maxSmallBody+1)).expect(t, 413, "huge narinfo")
}

func TestReadTokens(t *testing.T) {
	e := newEnv(t, false)
	e.push(pathA, "private")
	path := "/" + pathA[:32] + ".narinfo"
	miss := "/" + pathB[:32] + ".narinfo"
	for _, p := range []string{path, miss} {
		r := e.do("GET", p, "", nil).expect(t, 401, "no token")
		if r.body != "unauthorized\n" || r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("401 says %q, WWW-Authenticate %q", r.body, r.header.Get("WWW-Authenticate"))
		}
		e.do("GET", p, "wrong-token", nil).expect(t, 401, "wrong token")
	}
	r := e.do("GET", path, readToken, nil).expect(t, 200, "read token")
	if cc := r.header.Get("Cache-Control"); !strings.HasPrefix(cc, "private") {
		t.Errorf("private cache answered Cache-Control %q", cc)
	}
	e.do("GET", path, pushToken, nil).expect(t, 200, "push token reads")
	e.do("GET", "/nix-cache-info", "", nil).expect(t, 200, "nix-cache-info stays public")
	r = e.do("PUT", "/nix-cache-info", readToken, nil).expect(t, 403, "push with a read token")
	if !strings.Contains(r.body, "this is a read token; this needs a push token") {
		t.Errorf("403 says %q", r.body)
	}
	bearer := e.do("GET", path, "", nil, "Authorization: Bearer "+readToken)
	bearer.expect(t, 200, "bearer token")
	if strings.Contains(e.logs.String(), readToken) || strings.Contains(e.logs.String(), pushToken) {
		t.Errorf("a token reached the logs:\n%s", e.logs)
	}
}

func TestLogsRealisationsDebugInfo(t *testing.T) {
	e := newEnv(t, true)
	p := e.push(pathA, "with extras")
	drv := "/log/" + pathB[:33] + "hello.drv"
	e.do("PUT", drv, "", []byte("log")).expect(t, 401, "log without a token")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("building hello\nall good\n"))
	zw.Close()
	e.do("PUT", drv, pushToken, gz.Bytes(), "Content-Encoding: gzip", "Content-Type: text/plain; charset=utf-8").expect(t, 204, "PUT log")
	if r := e.do("GET", drv, "", nil).expect(t, 200, "GET log"); r.body != "building hello\nall good\n" {
		t.Errorf("log: %q", r.body)
	}
	e.do("GET", "/log/"+pathA[:33]+"other.drv", "", nil).expect(t, 404, "missing log")
	e.do("PUT", "/log/not-a-drv", pushToken, []byte("x")).expect(t, 400, "bad log name")

	// A realisation as Nix 2.34 uploads it ("!" escaped), served signed.
	id := "sha256:" + strings.Repeat("0f", 32) + "!out"
	doc := `{"dependentRealisations":{},"id":"` + id + `","outPath":"` + pathA + `","signatures":[]}`
	e.do("PUT", "/realisations/"+strings.Replace(id, "!", "%21", 1)+".doi", pushToken, []byte(doc)).expect(t, 204, "PUT realisation")
	fp := `{"dependentRealisations":{},"id":"` + id + `","outPath":"` + pathA + `"}`
	signed := strings.Replace(doc, `"signatures":[]`, `"signatures":["`+e.key.Sign([]byte(fp))+`"]`, 1)
	if r := e.do("GET", "/realisations/"+id+".doi", "", nil).expect(t, 200, "GET realisation"); r.body != signed {
		t.Errorf("realisation: %s, want %s", r.body, signed)
	}
	e.do("GET", "/realisations/"+strings.Replace(id, "0f", "1f", 1)+".doi", "", nil).expect(t, 404, "missing realisation")
	// A build trace entry, as Nix 2.35 uploads it.
	trace := "/build-trace-v2/" + pathB + ".drv/out.doi"
	e.do("PUT", trace, pushToken, []byte(`{"outPath":"`+pathA+`","signatures":[]}`)).expect(t, 204, "PUT build trace")
	fp = `{"key":{"drvPath":"` + pathB + `.drv","outputName":"out"},"value":{"outPath":"` + pathA + `"}}`
	name, sig, _ := strings.Cut(e.key.Sign([]byte(fp)), ":")
	want := `{"outPath":"` + pathA + `","signatures":[{"keyName":"` + name + `","sig":"` + sig + `"}]}`
	if r := e.do("GET", trace, "", nil).expect(t, 200, "GET build trace"); r.body != want {
		t.Errorf("build trace: %s, want %s", r.body, want)
	}
	e.do("GET", "/build-trace-v2/"+pathB+".drv/dev.doi", "", nil).expect(t, 404, "missing build trace")
	e.do("GET", "/build-trace-v2/"+pathB+"/out.doi", "", nil).expect(t, 400, "build trace of a non-derivation")

	build := strings.Repeat("ab", 20)
	di := `{"archive":"../nar/` + p.xzName + `","member":"lib/debug/.build-id/ab/x.debug"}`
	e.do("PUT", "/debuginfo/"+build+".debug", pushToken, []byte(di)).expect(t, 204, "PUT debuginfo")
	e.do("PUT", "/debuginfo/"+build+".debug", pushToken, []byte(`{"archive":"../nar/x","member":"y"}`)).expect(t, 204, "PUT debuginfo again")
	served, _ := narinfo.Parse([]byte(e.do("GET", "/"+pathA[:32]+".narinfo", "", nil).body))
	for _, name := range []string{build, build + ".debug"} {
		r := e.do("GET", "/debuginfo/"+name, "", nil).expect(t, 200, "GET debuginfo")
		if want := `{"archive":"../` + served.URL + `","member":"lib/debug/.build-id/ab/x.debug"}`; r.body != want {
			t.Errorf("debuginfo: %s, want %s", r.body, want)
		}
	}
}

func TestRequestLog(t *testing.T) {
	e := newEnv(t, true)
	e.do("GET", "/nix-cache-info", "", nil)
	e.do("PUT", "/"+pathB[:32]+".narinfo", pushToken, []byte("nonsense"))
	logs := e.logs.String()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`msg=request method=GET path=/nix-cache-info status=200 bytes=\d+ duration=\S+`),
		regexp.MustCompile(`msg=request method=PUT path=/` + pathB[:32] + `\.narinfo status=400 .*error=`),
	} {
		if !want.MatchString(logs) {
			t.Errorf("no log line matching %s in:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, pushToken) {
		t.Error("the token reached the logs")
	}
}

// tripwire is a blob store that fails the test when touched.
type tripwire struct {
	storage.Store
	t *testing.T
}

func (w tripwire) Open(ctx context.Context, key string) (io.ReadSeekCloser, error) {
	w.t.Errorf("storage Open(%s) during a narinfo lookup", key)
	return w.Store.Open(ctx, key)
}

func (w tripwire) Stat(ctx context.Context, key string) (storage.Info, error) {
	w.t.Errorf("storage Stat(%s) during a narinfo lookup", key)
	return w.Store.Stat(ctx, key)
}

func (w tripwire) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	w.t.Errorf("storage List(%s) during a narinfo lookup", prefix)
	return w.Store.List(ctx, prefix, fn)
}

func TestNarInfoNeverTouchesStorage(t *testing.T) {
	e := newEnv(t, true)
	e.push(pathA, "present")
	s, ok := e.srv.Config.Handler.(*Server)
	if !ok {
		t.Fatal("test server does not run a *Server")
	}
	s.store = tripwire{s.store, t}
	for _, m := range []string{"GET", "HEAD"} {
		e.do(m, "/"+pathA[:32]+".narinfo", "", nil).expect(t, 200, m+" hit")
		e.do(m, "/"+pathB[:32]+".narinfo", "", nil).expect(t, 404, m+" miss")
	}
}
