package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"html"
	"io"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ulikunitz/xz"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/catalog/catalogtest"
	"github.com/nix-cached/cached/nar"
	"github.com/nix-cached/cached/narinfo"
	"github.com/nix-cached/cached/nixbase32"
	"github.com/nix-cached/cached/nixhash"
	"github.com/nix-cached/cached/web"
)

// uiBase returns the base name of a test path: a hash part named by
// name, a '-', and name.
func uiBase(name string) string { return catalogtest.HashPart("ui:"+name) + "-" + name }

// hostileEntry is a file name that is markup: NAR entry names may hold
// anything but '/' and NUL, and pushers choose them.
const hostileEntry = `<img src=x onerror=alert(1)>"'&`

// hostileTarget is a symlink target that is markup.
const hostileTarget = `</td><script>alert("pwned")</script>`

// pushTree pushes a path whose NAR is a directory holding a README, an
// executable bin/hello, a symlink with a hostile target, and a file with
// a hostile name, with references refs (base names).
func (e *env) pushTree(base string, refs ...string) {
	e.t.Helper()
	var plain bytes.Buffer
	w := nar.NewWriter(&plain)
	for _, f := range []struct {
		h        nar.Header
		contents string
	}{
		{nar.Header{Path: "/", Type: nar.TypeDirectory}, ""},
		{nar.Header{Path: "/" + hostileEntry, Type: nar.TypeRegular, Size: 5}, "boom\n"},
		{nar.Header{Path: "/README", Type: nar.TypeRegular, Size: 6}, "hello\n"},
		{nar.Header{Path: "/bin", Type: nar.TypeDirectory}, ""},
		{nar.Header{Path: "/bin/hello", Type: nar.TypeRegular, Executable: true, Size: 2048}, strings.Repeat("x", 2048)},
		{nar.Header{Path: "/link", Type: nar.TypeSymlink, LinkTarget: hostileTarget}, ""},
	} {
		h := f.h
		if err := w.WriteHeader(&h); err != nil {
			e.t.Fatal(err)
		}
		io.WriteString(w, f.contents)
	}
	if err := w.Close(); err != nil {
		e.t.Fatal(err)
	}
	var file bytes.Buffer
	xw, _ := xz.NewWriter(&file)
	xw.Write(plain.Bytes())
	xw.Close()
	fsum, nsum := sha256.Sum256(file.Bytes()), sha256.Sum256(plain.Bytes())
	name := nixbase32.EncodeToString(fsum[:]) + ".nar.xz"
	ni := narinfo.NarInfo{
		StorePath: "/nix/store/" + base, URL: "nar/" + name, Compression: "xz",
		FileHash: nixhash.NewSHA256(fsum), FileSize: uint64(file.Len()),
		NarHash: nixhash.NewSHA256(nsum), NarSize: uint64(plain.Len()), References: refs,
	}
	e.do("PUT", "/nar/"+name, pushToken, file.Bytes(), "Content-Type: application/x-nix-nar").expect(e.t, 204, "PUT NAR")
	e.do("PUT", "/"+base[:32]+".narinfo", pushToken, []byte(ni.String())).expect(e.t, 204, "PUT narinfo")
}

// uiEnv is a test server holding a small closure pushed through the HTTP
// API: hello (a tree) references glibc and itself, app references hello,
// and hello is pinned.
type uiEnv struct {
	*env
	glibc, hello, app string // base names
}

func newUIEnv(t *testing.T, publicRead bool) uiEnv {
	t.Helper()
	e := newEnv(t, publicRead)
	u := uiEnv{env: e, glibc: uiBase("glibc-2.39"), hello: uiBase("hello-2.12.1"), app: uiBase("app-1.0")}
	e.push(u.glibc, "libc contents")
	e.pushTree(u.hello, u.glibc, u.hello)
	e.push(u.app, "app contents", u.hello)
	pin := fmt.Sprintf(`{"name": "release", "storePath": "/nix/store/%s"}`, u.hello)
	e.do("POST", "/_cached/pins", pushToken, []byte(pin)).expect(t, 204, "pin")
	return u
}

// page GETs a page of the web view as a browser does, with token ("" for
// none), and checks the headers of every page.
func (e *env) page(path, token string, code int) string {
	e.t.Helper()
	r := e.do("GET", path, token, nil, "Accept: "+browserAccept).expect(e.t, code, "GET "+path)
	checkPageHeaders(e.t, path, r)
	return r.body
}

// checkPageHeaders checks what every page of the web view must say.
func checkPageHeaders(t testing.TB, path string, r response) {
	t.Helper()
	for h, want := range map[string]string{
		"Content-Type":            typeHTML,
		"Cache-Control":           "no-store",
		"X-Content-Type-Options":  "nosniff",
		"Content-Security-Policy": web.Policy,
	} {
		if got := r.header.Get(h); got != want {
			t.Errorf("GET %s: %s %q, want %q", path, h, got, want)
		}
	}
	// Text is escaped, so every '<' starts real markup: none may load or
	// run anything.
	if m := activeMarkup.FindString(r.body); m != "" {
		t.Errorf("GET %s: the page has %q", path, m)
	}
}

// activeMarkup matches markup that loads or runs something, or leads
// away: scripts, embedded content, event handlers, sources, links and
// forms to other sites, javascript: URLs, imports.
var activeMarkup = regexp.MustCompile(`(?i)<(script|img|iframe|object|embed|link\s[^>]*stylesheet)|` +
	`<[a-z][^>]*\s(on[a-z]+|src|srcset)\s*=|` +
	`<[a-z][^>]*\s(href|action|formaction)\s*=\s*["']?\s*(https?:|//)|javascript:|@import`)

// TestUISearch checks the search: by name, case ignored, paged by cursor,
// with the query shown back escaped.
func TestUISearch(t *testing.T) {
	e := newUIEnv(t, true)
	body := e.page(web.Prefix+"/paths?q=HELLO", "", 200)
	if !strings.Contains(body, `href="/_cached/ui/path/`+e.hello[:32]+`">/nix/store/`+e.hello+`</a>`) {
		t.Errorf("search for HELLO does not link hello:\n%s", body)
	}
	for _, other := range []string{e.glibc, e.app} {
		if strings.Contains(body, other) {
			t.Errorf("search for HELLO lists %s", other)
		}
	}
	if !strings.Contains(body, `<span id="query">HELLO</span>`) {
		t.Error("the page does not show the query")
	}
	all := e.page(web.Prefix+"/paths", "", 200)
	// Ordered by name: app, glibc, hello.
	ia, ig, ih := strings.Index(all, e.app), strings.Index(all, e.glibc), strings.Index(all, e.hello)
	if ia < 0 || ig < 0 || ih < 0 || !(ia < ig && ig < ih) {
		t.Errorf("every path: not app, glibc, hello in that order (%d %d %d)", ia, ig, ih)
	}
	if strings.Contains(all, `id="next"`) {
		t.Error("a page of 3 paths has a next page")
	}
	none := e.page(web.Prefix+"/paths?q=nothing-like-it", "", 200)
	if !strings.Contains(none, "No path whose name contains “nothing-like-it”") {
		t.Errorf("no match: %s", none)
	}

	// The query is shown back escaped, in the heading and the search box.
	hostile := `"><script>alert(1)</script>`
	body = e.page(web.Prefix+"/paths?q="+url.QueryEscape(hostile), "", 200)
	if strings.Contains(body, hostile) || strings.Contains(body, "<script>") {
		t.Errorf("the query is not escaped:\n%s", body)
	}
	if !strings.Contains(body, `<span id="query">&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;</span>`) ||
		!strings.Contains(body, `value="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"`) {
		t.Errorf("the escaped query is not shown:\n%s", body)
	}
}

// TestUISearchPages pushes more paths than a page holds and follows the
// next links to the end.
func TestUISearchPages(t *testing.T) {
	e := newEnv(t, true)
	const n = web.PageSize + 7
	want := map[string]bool{}
	for i := range n {
		base := uiBase(fmt.Sprintf("pkg-%03d", i))
		e.push(base, fmt.Sprintf("contents %d", i))
		want[base] = true
	}
	e.push(uiBase("other"), "not a pkg")
	next, pages, seen := web.Prefix+"/paths?q=pkg-", 0, 0
	for next != "" {
		pages++
		if pages > 3 {
			t.Fatal("the next links do not end")
		}
		body := e.page(next, "", 200)
		for base := range want {
			if c := strings.Count(body, ">/nix/store/"+base+"<"); c == 1 {
				seen++
			}
		}
		if strings.Contains(body, "other") {
			t.Error("search for pkg- lists other")
		}
		next = ""
		if m := nextLink.FindStringSubmatch(body); m != nil {
			next = html.UnescapeString(m[1])
		}
	}
	if pages != 2 || seen != n {
		t.Errorf("%d pages listed %d of %d paths; want 2 pages listing all", pages, seen, n)
	}
}

// nextLink finds the address of the next page of search results.
var nextLink = regexp.MustCompile(`<a href="([^"]*)" id="next"`)

// TestUIPath checks the page of a path: sizes, closure, references,
// referrers, pins, signatures and its files, all escaped.
func TestUIPath(t *testing.T) {
	e := newUIEnv(t, true)
	body := e.page(web.Prefix+"/path/"+e.hello[:32], "", 200)
	for _, want := range []string{
		`<h1 id="store-path" class="mono">/nix/store/` + e.hello + `</h1>`,
		// References: glibc and itself; referrers: app.
		`<ul class="links mono" id="references">`,
		`<a href="/_cached/ui/path/` + e.glibc[:32] + `">/nix/store/` + e.glibc + `</a>`,
		`<a href="/_cached/ui/path/` + e.hello[:32] + `">/nix/store/` + e.hello + `</a> <span class="tag">itself</span>`,
		`<ul class="links mono" id="referrers">`,
		`<a href="/_cached/ui/path/` + e.app[:32] + `">/nix/store/` + e.app + `</a>`,
		// The pin, and the signature of the server's key.
		`<td class="mono">release</td>`, "current",
		`<ul class="links mono" id="signatures">`,
		"<li>server-test-1:",
		// Closure: hello and glibc.
		`<dd id="closure">2 paths,`,
		"(zstd)", // the cache stores what it was sent (xz) as zstd
		// Files.
		`<table class="listing" id="listing">`,
		">README<", ">bin/<", ">hello<", "exec", "2.0 KiB",
		// Hostile names and targets, escaped.
		"&lt;img src=x onerror=alert(1)&gt;&#34;&#39;&amp;",
		"link → &lt;/td&gt;&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the page of hello has no %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, hostileEntry) || strings.Contains(body, hostileTarget) {
		t.Errorf("a hostile name or target came through unescaped:\n%s", body)
	}
	if !strings.Contains(body, "Sig: server-test-1:") {
		t.Error("no narinfo on the page")
	}

	// glibc: referenced by hello, no pins, a one-file listing.
	body = e.page(web.Prefix+"/path/"+e.glibc[:32], "", 200)
	for _, want := range []string{
		`<dd id="closure">1 path,`, "No pin names it.", "<p class=\"muted\">None.</p>",
		`<a href="/_cached/ui/path/` + e.hello[:32] + `">`, "file",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the page of glibc has no %q:\n%s", want, body)
		}
	}
	// app's closure is all three.
	if body := e.page(web.Prefix+"/path/"+e.app[:32], "", 200); !strings.Contains(body, `<dd id="closure">3 paths,`) {
		t.Errorf("the closure of app is not 3 paths:\n%s", body)
	}
}

// TestUIPinsAndGC checks the pins page, with a pin name that is markup,
// and the collections page with its chart.
func TestUIPinsAndGC(t *testing.T) {
	e := newUIEnv(t, true)
	hostile := `<b>bold</b><script>alert(1)</script>`
	pin := fmt.Sprintf(`{"name": %q, "storePath": "/nix/store/%s", "expires": "1h"}`, hostile, e.app)
	e.do("POST", "/_cached/pins", pushToken, []byte(pin)).expect(t, 204, "pin")
	body := e.page(web.Prefix+"/pins", "", 200)
	for _, want := range []string{
		`<td class="mono">release</td>`,
		`<a href="/_cached/ui/path/` + e.hello[:32] + `">/nix/store/` + e.hello + `</a>`,
		`<td class="mono">&lt;b&gt;bold&lt;/b&gt;&lt;script&gt;alert(1)&lt;/script&gt;</td>`,
		`<a href="/_cached/ui/path/` + e.app[:32] + `">`,
		"never",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the pins page has no %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, hostile) {
		t.Error("a pin name came through unescaped")
	}

	body = e.page(web.Prefix+"/gc", "", 200)
	if !strings.Contains(body, "No garbage collection has run yet") || !strings.Contains(body, `<svg class="chart"`) {
		t.Errorf("the collections page without runs:\n%s", body)
	}
	e.recordGCRuns()
	body = e.page(web.Prefix+"/gc", "", 200)
	for _, want := range []string{
		`<table id="runs">`, "host-0:1", "host-2:1", "1m30s", "4.0 MiB", "10.0 MiB",
		"host-x:&lt;9&gt;", `<span class="tag bad">failed</span> gc: &lt;listing&gt; failed`,
		`<polyline class="bytes" points="`, "<title>now: ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the collections page has no %q:\n%s", want, body)
		}
	}
	// Three completed runs and now; the failed run is not a point.
	if n := strings.Count(body, `<circle class="dot-bytes"`); n != 4 {
		t.Errorf("the chart has %d points, want 4", n)
	}
	// Newest first.
	if strings.Index(body, "host-2:1") > strings.Index(body, "host-0:1") {
		t.Error("the runs are not newest first")
	}
}

// recordGCRuns records three completed collections, 12 hours apart from
// two days ago, that left 10, 6 and 3 paths (and MiB), and a failed one.
func (e *env) recordGCRuns() {
	e.t.Helper()
	ctx := context.Background()
	start := time.Now().Add(-48 * time.Hour)
	for i, live := range []int{10, 6, 3} {
		r := catalog.GCRun{Holder: fmt.Sprintf("host-%d:1", i), Started: start.Add(time.Duration(i) * 12 * time.Hour),
			PathsRemoved: 4, NARsRemoved: 4, BytesRemoved: 4 << 20, LivePaths: live, LiveBytes: int64(live) << 20}
		r.Finished = r.Started.Add(90 * time.Second)
		if err := e.cat.RecordGCRun(ctx, r); err != nil {
			e.t.Fatal(err)
		}
	}
	failed := catalog.GCRun{Holder: "host-x:<9>", Started: start.Add(40 * time.Hour), Finished: start.Add(40 * time.Hour),
		Error: "gc: <listing> failed"}
	if err := e.cat.RecordGCRun(ctx, failed); err != nil {
		e.t.Fatal(err)
	}
}

// TestUIIndex checks the summary, the search box and the links on the
// front page, and that a private cache shows them only with a token.
func TestUIIndex(t *testing.T) {
	for _, publicRead := range []bool{true, false} {
		e := newUIEnv(t, publicRead)
		for _, token := range []string{"", readToken, pushToken, "wrong-token"} {
			body := e.page("/", token, 200)
			browse := publicRead || token == readToken || token == pushToken
			summary := strings.Contains(body, `<div class="stats" id="summary">`) &&
				strings.Contains(body, `<div class="stat"><b>3</b><span>store paths</span></div>`) &&
				strings.Contains(body, `<form class="search" method="get" action="/_cached/ui/paths" role="search">`)
			if summary != browse {
				t.Errorf("public %v, token %q: summary %v, want %v:\n%s", publicRead, token, summary, browse, body)
			}
			if !strings.Contains(body, `href="/_cached/ui/paths"`) || !strings.Contains(body, `href="/_cached/ui/gc"`) {
				t.Errorf("public %v, token %q: no links to the pages", publicRead, token)
			}
			if !strings.Contains(body, `<pre id="use"><code>cached use `) {
				t.Errorf("public %v, token %q: the instructions are gone", publicRead, token)
			}
			checkNoSecrets(t, "GET /", body)
		}
	}
}

// TestUIPrivate checks that every page of a private cache needs a token
// that reads, and that the refusal makes a browser ask for one.
func TestUIPrivate(t *testing.T) {
	e := newUIEnv(t, false)
	for _, path := range []string{
		web.Prefix + "/paths", web.Prefix + "/paths?q=hello", web.Prefix + "/path/" + e.hello[:32],
		web.Prefix + "/path/" + strings.Repeat("0", 32), web.Prefix + "/pins", web.Prefix + "/gc",
	} {
		for _, token := range []string{"", "wrong-token"} {
			r := e.do("GET", path, token, nil, "Accept: "+browserAccept).expect(t, 401, path+" without a token")
			if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Basic ") {
				t.Errorf("%s: WWW-Authenticate %q, want Basic", path, got)
			}
			if strings.Contains(r.body, "hello") || strings.Contains(r.body, "release") {
				t.Errorf("%s: a refusal tells what exists: %q", path, r.body)
			}
		}
		want := 200
		if strings.Contains(path, "/path/0000") {
			want = 404
		}
		for _, token := range []string{readToken, pushToken, adminToken} {
			e.page(path, token, want)
		}
	}
}

// TestUIBadInput checks that malformed input is a 4xx page, never a 5xx.
func TestUIBadInput(t *testing.T) {
	e := newUIEnv(t, true)
	for path, code := range map[string]int{
		web.Prefix + "/path/" + strings.Repeat("0", 32):                     404,
		web.Prefix + "/path/" + strings.Repeat("e", 32):                     400, // 'e' is not nix32
		web.Prefix + "/path/short":                                          400,
		web.Prefix + "/path/" + e.hello:                                     400, // a base name, not a hash part
		web.Prefix + "/path/" + url.PathEscape("<script>alert(1)</script>"): 400,
		web.Prefix + "/paths?q=" + strings.Repeat("a", 212):                 400,
		web.Prefix + "/paths?q=" + strings.Repeat("a", 211):                 200,
		web.Prefix + "/paths?after=garbage":                                 400,
		web.Prefix + "/paths?after=" + strings.Repeat("e", 32) + "-x":       400,
		web.Prefix + "/paths?after=" + strings.Repeat("0", 32) + "-":        400,
		web.Prefix + "/paths?after=" + url.QueryEscape(e.hello):             200,
		web.Prefix + "/paths?q=%ff%fe":                                      200,
		web.Prefix + "/paths?q=%25_%5C":                                     200,
		web.Prefix + "/nothing":                                             404,
	} {
		r := e.do("GET", path, "", nil, "Accept: "+browserAccept)
		if r.code != code {
			t.Errorf("GET %s: %d, want %d (%s)", path, r.code, code, r.body)
			continue
		}
		if strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
			checkPageHeaders(t, path, r)
			if strings.Contains(r.body, "<script>") {
				t.Errorf("GET %s: the page has a script:\n%s", path, r.body)
			}
		}
	}
	// The view's own root leads to the front page.
	for _, path := range []string{web.Prefix, web.Prefix + "/"} {
		r := e.do("GET", path, "", nil)
		if r.code != 200 || !strings.Contains(r.body, "cached: a Nix binary cache at") {
			t.Errorf("GET %s: %d, not the front page", path, r.code)
		}
	}
	// HEAD answers the headers of GET, without a body.
	get := e.do("GET", web.Prefix+"/path/"+e.hello[:32], "", nil)
	head := e.do("HEAD", web.Prefix+"/path/"+e.hello[:32], "", nil).expect(t, 200, "HEAD")
	if head.body != "" || head.header.Get("Content-Length") != get.header.Get("Content-Length") {
		t.Errorf("HEAD: body %q, Content-Length %q; GET's %q", head.body, head.header.Get("Content-Length"),
			get.header.Get("Content-Length"))
	}
}
