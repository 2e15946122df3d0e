package server

import (
	"bytes"
	"html"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nix-cached/cached/auth"
	"github.com/nix-cached/cached/internal/browsertest"
	"github.com/nix-cached/cached/signing"
)

// browserAccept is the Accept header Chromium and Firefox send for a page.
const browserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"

// indexEnv is a test server with two signing keys, so that GET / has two
// public keys to put on its one extra-trusted-public-keys line.
type indexEnv struct {
	*env
	s    *Server
	keys string // both public keys, separated by a space
	host string // the test server's host:port
}

func newIndexEnv(t *testing.T, publicRead bool) indexEnv {
	t.Helper()
	logs := &lockedBuffer{}
	p := newParts(t, publicRead, logs)
	second, err := signing.GenerateKey("server-test-2", nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := auth.Config{AdminTokens: []string{adminToken}, PushTokens: []string{pushToken}, PublicRead: publicRead}
	if !publicRead {
		cfg.ReadTokens = []string{readToken}
	}
	keys := []signing.PublicKey{p.key.Public(), second.Public()}
	s, err := New(Config{PublicKeys: keys, Logger: slog.New(slog.NewTextHandler(logs, nil))},
		p.cat, p.store, p.ing, auth.New(cfg, p.cat))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, srv: httptest.NewServer(s), cat: p.cat, store: p.store, key: p.key, logs: logs}
	t.Cleanup(e.srv.Close)
	return indexEnv{env: e, s: s, keys: keys[0].String() + " " + keys[1].String(),
		host: strings.TrimPrefix(e.srv.URL, "http://")}
}

// get sends method / with the given Host ("" keeps the server's) and
// headers ("Name: value").
func (e indexEnv) get(method, host string, headers ...string) response {
	e.t.Helper()
	if host != "" {
		headers = append([]string{"Host: " + host}, headers...)
	}
	return e.do(method, "/", "", nil, headers...)
}

// direct calls the handler without a network in between, so that Host can
// be anything, as it may be behind a proxy that passes it on unchecked.
func (e indexEnv) direct(method, host string, headers ...string) response {
	e.t.Helper()
	req := httptest.NewRequest(method, "/", nil)
	req.Host = host
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	e.s.ServeHTTP(w, req)
	return response{w.Code, w.Header(), w.Body.String()}
}

// lines returns the lines of body that start with prefix.
func lines(body, prefix string) []string {
	var out []string
	for l := range strings.Lines(body) {
		if strings.HasPrefix(l, prefix) {
			out = append(out, strings.TrimSuffix(l, "\n"))
		}
	}
	return out
}

// checkNoSecrets fails if body holds a real token.
func checkNoSecrets(t *testing.T, what, body string) {
	t.Helper()
	for _, tok := range []string{adminToken, pushToken, readToken} {
		if strings.Contains(body, tok) {
			t.Errorf("%s shows the token %s", what, tok)
		}
	}
}

// TestIndexText checks the plain-text page, line by line: the extra- forms
// of the nix.conf settings, every key on one line, the netrc line with a
// placeholder for the token, and the commands.
func TestIndexText(t *testing.T) {
	e := newIndexEnv(t, true)
	r := e.get("GET", "").expect(t, 200, "GET /")
	url := "http://" + e.host
	want := "cached: a Nix binary cache at " + url + "\n" +
		"\n" +
		"The easiest way to use it: run this on the client. It writes the\n" +
		"nix.conf lines below for you.\n" +
		"\n" +
		"cached use " + url + "\n" +
		"\n" +
		"Or add these lines to /etc/nix/nix.conf yourself, then restart nix-daemon:\n" +
		"\n" +
		"extra-substituters = " + url + "\n" +
		"extra-trusted-public-keys = " + e.keys + "\n" +
		"\n" +
		"To push, put this line, with a push token, in /etc/nix/netrc (or the\n" +
		"file that netrc-file names in nix.conf):\n" +
		"\n" +
		"machine 127.0.0.1 password <push token>\n" +
		"\n" +
		"then copy store paths to the cache:\n" +
		"\n" +
		"nix copy --to " + url + " /nix/store/…-hello\n"
	if r.body != want {
		t.Errorf("GET / =\n%s\nwant\n%s", r.body, want)
	}
	for _, bad := range []string{"substituters", "trusted-public-keys"} {
		if l := lines(r.body, bad); len(l) > 0 {
			t.Errorf("%q: pasted into nix.conf, it replaces the default instead of adding to it", l)
		}
	}
	if l := lines(r.body, "extra-trusted-public-keys"); len(l) != 1 {
		t.Errorf("%d extra-trusted-public-keys lines, want 1: %q", len(l), l)
	}
	if strings.Contains(r.body, "private") || strings.Contains(r.body, "<read token>") {
		t.Error("a public cache says reads need a token")
	}
	checkNoSecrets(t, "GET /", r.body)
	if got := r.header.Get("Content-Type"); got != typeText {
		t.Errorf("Content-Type %q, want %q", got, typeText)
	}
	checkIndexHeaders(t, r)

	// curl's Accept, and one that names neither form, get text too.
	for _, accept := range []string{"*/*", "application/json", "text/plain", "text/*"} {
		if r := e.get("GET", "", "Accept: "+accept).expect(t, 200, accept); r.body != want {
			t.Errorf("Accept: %s: got\n%s", accept, r.body)
		}
	}
}

// checkIndexHeaders checks that proxies keep neither form of GET /.
func checkIndexHeaders(t *testing.T, r response) {
	t.Helper()
	if v := r.header.Get("Vary"); !strings.Contains(v, "Accept") || !strings.Contains(v, "X-Forwarded-Proto") {
		t.Errorf("Vary %q, want Accept and X-Forwarded-Proto", v)
	}
	if v := r.header.Get("Cache-Control"); v != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", v)
	}
	if v := r.header.Get("X-Content-Type-Options"); v != "nosniff" {
		t.Errorf("X-Content-Type-Options %q, want nosniff", v)
	}
}

// TestIndexHost checks that the page shows the URL the client used: the
// Host header and the scheme, from TLS or from a proxy's
// X-Forwarded-Proto.
func TestIndexHost(t *testing.T) {
	e := newIndexEnv(t, true)
	for _, c := range []struct {
		host, proto  string
		url, machine string
	}{
		{"cache.example", "", "http://cache.example", "cache.example"},
		{"cache.example:8080", "", "http://cache.example:8080", "cache.example"},
		{"Cache.Example:8080", "http", "http://Cache.Example:8080", "Cache.Example"},
		{"cache.example", "https", "https://cache.example", "cache.example"},
		{"cache.example", "HTTPS", "https://cache.example", "cache.example"},
		{"cache.example:8443", "https, http", "https://cache.example:8443", "cache.example"},
		{"10.0.0.7:8080", "", "http://10.0.0.7:8080", "10.0.0.7"},
		{"[fd00::7]:8080", "https", "https://[fd00::7]:8080", "fd00::7"},
		{"[::1]", "", "http://[::1]", "::1"},
	} {
		var hdr []string
		if c.proto != "" {
			hdr = append(hdr, "X-Forwarded-Proto: "+c.proto)
		}
		text := e.get("GET", c.host, hdr...).expect(t, 200, c.host).body
		for _, want := range []string{
			"cached use " + c.url + "\n",
			"extra-substituters = " + c.url + "\n",
			"machine " + c.machine + " password <push token>\n",
			"nix copy --to " + c.url + " /nix/store/…-hello\n",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("Host %q, X-Forwarded-Proto %q: no line %q in\n%s", c.host, c.proto, want, text)
			}
		}
		page := html.UnescapeString(e.get("GET", c.host, append(hdr, "Accept: "+browserAccept)...).expect(t, 200, c.host).body)
		for _, want := range []string{
			"cached use " + c.url + "</code>",
			"extra-substituters = " + c.url + "\n",
			"machine " + c.machine + " password <push token>",
		} {
			if !strings.Contains(page, want) {
				t.Errorf("Host %q, X-Forwarded-Proto %q: HTML has no %q", c.host, c.proto, want)
			}
		}
	}

	// A TLS connection is https without any header.
	tls := httptest.NewTLSServer(e.s)
	defer tls.Close()
	resp, err := tls.Client().Get(tls.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "extra-substituters = " + tls.URL + "\n"; !strings.HasPrefix(tls.URL, "https://") || !strings.Contains(string(body), want) {
		t.Errorf("over TLS: no line %q in\n%s", want, body)
	}
}

// TestIndexHostileHost sends Host headers that are not a host[:port]: the
// page must not reflect them, in either form, and shows a placeholder.
func TestIndexHostileHost(t *testing.T) {
	e := newIndexEnv(t, true)
	check := func(how, host string, r response) {
		t.Helper()
		r.expect(t, 200, how+" "+host)
		if host != "" && (strings.Contains(r.body, host) || strings.Contains(html.UnescapeString(r.body), host)) {
			t.Errorf("%s: Host %q reflected in\n%s", how, host, r.body)
		}
		if strings.Contains(r.body, "<script") || strings.Contains(r.body, "alert(") {
			t.Errorf("%s: Host %q injected markup or script:\n%s", how, host, r.body)
		}
		placeholder := "extra-substituters = http://<host>\n"
		if strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
			placeholder = "extra-substituters = http://&lt;host&gt;\n"
		}
		if !strings.Contains(r.body, placeholder) {
			t.Errorf("%s: Host %q: no placeholder line %q in\n%s", how, host, placeholder, r.body)
		}
	}
	// What Go's server lets through to the handler.
	for _, host := range []string{
		"x.example'onmouseover=alert(1)", "a.example;b=c", "cache.example:80:80",
		"cache.example:0", "cache.example:99999", "cache.example:", "-cache.example",
		"a..example", "[10.0.0.1]", "[::1", "::1", "1.2.3.4:8080]",
	} {
		check("text", host, e.get("GET", host))
		check("HTML", host, e.get("GET", host, "Accept: "+browserAccept))
	}
	// What a proxy might pass on unchecked.
	for _, host := range []string{
		"<script>alert(1)</script>", "cache.example <b>x</b>", "cache .example", "cache.example\r\nSet-Cookie: x=y",
		"cache.example/x", "user@cache.example", "cache.example:80/<i>", "[fd00::7%eth0]:80", "[fd00::7%25eth0]:80",
		"[fd00::7]x", "[fd00::7]:x",
		"\"><img src=x onerror=alert(1)>", "",
	} {
		check("text", host, e.direct("GET", host))
		check("HTML", host, e.direct("GET", host, "Accept: "+browserAccept))
	}
}

// TestIndexPrivate checks that a private cache says that readers need the
// netrc line too.
func TestIndexPrivate(t *testing.T) {
	e := newIndexEnv(t, false)
	text := e.get("GET", "cache.example").expect(t, 200, "GET / without a token").body
	for _, want := range []string{
		"\nThis cache is private: reading needs a token too. Every reader needs this\n",
		"\nmachine cache.example password <read token>\n",
		"\nTo push, use a push token in that line instead (it reads too):\n",
		"\nmachine cache.example password <push token>\n",
		"\nextra-substituters = http://cache.example\n",
		"\nextra-trusted-public-keys = " + e.keys + "\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q in\n%s", want, text)
		}
	}
	checkNoSecrets(t, "GET /", text)
	page := html.UnescapeString(e.get("GET", "cache.example", "Accept: "+browserAccept).expect(t, 200, "GET / (HTML)").body)
	for _, want := range []string{
		"This cache is private: reading needs a token too.",
		"machine cache.example password <read token>",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("HTML has no %q:\n%s", want, page)
		}
	}
	checkNoSecrets(t, "GET / (HTML)", page)
}

// TestIndexHTML checks the page browsers get: HTML, escaped, self-contained.
func TestIndexHTML(t *testing.T) {
	e := newIndexEnv(t, true)
	r := e.get("GET", "", "Accept: "+browserAccept).expect(t, 200, "GET / (HTML)")
	if got := r.header.Get("Content-Type"); got != typeHTML {
		t.Errorf("Content-Type %q, want %q", got, typeHTML)
	}
	checkIndexHeaders(t, r)
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	url := "http://" + e.host
	page := html.UnescapeString(r.body)
	for _, want := range []string{
		"<!DOCTYPE html>",
		"<pre id=\"use\"><code>cached use " + url + "</code></pre>",
		"<pre id=\"nix-conf\"><code>extra-substituters = " + url + "\nextra-trusted-public-keys = " + e.keys + "</code></pre>",
		"<pre id=\"netrc-push\"><code>machine 127.0.0.1 password <push token></code></pre>",
		"<pre id=\"copy\"><code>nix copy --to " + url + " /nix/store/…-hello</code></pre>",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("no %q in\n%s", want, page)
		}
	}
	if !strings.Contains(r.body, "password &lt;push token&gt;") {
		t.Error("the token placeholder is not escaped")
	}
	for _, bad := range []string{"<script", "src=", "@import", "http://fonts", "https://"} {
		if strings.Contains(r.body, bad) {
			t.Errorf("the page is not self-contained: it has %q", bad)
		}
	}
	if strings.Contains(r.body, "private") {
		t.Error("a public cache's page says it is private")
	}
	checkNoSecrets(t, "GET / (HTML)", r.body)

	// An explicit preference for text wins over HTML, and the reverse.
	for accept, html := range map[string]bool{
		"text/plain, text/html;q=0.5": false,
		"text/html, text/plain;q=0.5": true,
		"text/html":                   true,
		"text/*;q=0.5, text/html":     true,
		"TEXT/HTML":                   true,
		"text/html;q=0, */*":          false,
		"text/html;q=x":               false,
	} {
		r := e.get("GET", "", "Accept: "+accept)
		if got := strings.HasPrefix(r.header.Get("Content-Type"), "text/html"); got != html {
			t.Errorf("Accept: %s: HTML %v, want %v", accept, got, html)
		}
	}
}

// TestIndexHead checks that HEAD answers both forms' headers and no body.
func TestIndexHead(t *testing.T) {
	e := newIndexEnv(t, false)
	for _, accept := range []string{"*/*", browserAccept} {
		get := e.get("GET", "", "Accept: "+accept).expect(t, 200, "GET /")
		head := e.get("HEAD", "", "Accept: "+accept).expect(t, 200, "HEAD /")
		if head.body != "" {
			t.Errorf("Accept %s: HEAD sent a body: %q", accept, head.body)
		}
		for _, h := range []string{"Content-Type", "Content-Length", "Vary", "Cache-Control"} {
			if head.header.Get(h) != get.header.Get(h) {
				t.Errorf("Accept %s: HEAD %s %q, GET %q", accept, h, head.header.Get(h), get.header.Get(h))
			}
		}
		if n := head.header.Get("Content-Length"); n == "" || n == "0" {
			t.Errorf("Accept %s: HEAD Content-Length %q", accept, n)
		}
		checkIndexHeaders(t, head)
	}
}

// TestIndexInChromium loads GET / in a real headless Chromium and checks
// the DOM it rendered: the nix.conf lines, the one keys line and the
// cached use command, for a public and for a private cache.
func TestIndexInChromium(t *testing.T) {
	browsertest.Require(t)
	for _, publicRead := range []bool{true, false} {
		e := newIndexEnv(t, publicRead)
		url := e.srv.URL
		dom := browsertest.DumpDOM(t, url+"/")
		for _, want := range []string{
			"<h1><code>cached</code>: a Nix binary cache</h1>",
			"<code>cached use " + url + "</code>",
			"<code>extra-substituters = " + url + "\nextra-trusted-public-keys = " + e.keys + "</code>",
			"<code>machine 127.0.0.1 password &lt;push token&gt;</code>",
		} {
			if !strings.Contains(dom, want) {
				t.Errorf("public read %v: the rendered page has no %q:\n%s", publicRead, want, dom)
			}
		}
		if n := strings.Count(dom, "trusted-public-keys"); n != 1 {
			t.Errorf("public read %v: %d trusted-public-keys lines, want 1", publicRead, n)
		}
		private := strings.Contains(dom, "<code>machine 127.0.0.1 password &lt;read token&gt;</code>") &&
			strings.Contains(dom, "This cache is private")
		if private == publicRead {
			t.Errorf("public read %v: the page says private %v", publicRead, private)
		}
		// The page came as HTML (Chromium did not wrap plain text in a <pre>).
		if bytes.Contains([]byte(dom), []byte("<pre style=")) || !strings.Contains(dom, "<style>") {
			t.Errorf("public read %v: Chromium did not get the HTML page:\n%s", publicRead, dom)
		}
	}
}

// TestPrefersHTML checks the reading of Accept headers.
func TestPrefersHTML(t *testing.T) {
	for accept, want := range map[string]bool{
		"":                                   false,
		"*/*":                                false,
		"text/plain":                         false,
		"application/json":                   false,
		browserAccept:                        true,
		"text/html":                          true,
		"text/html;level=1;q=0.9, */*;q=0.1": true,
		"text/html;q=0.5, text/plain;q=0.5":  false,
		"text/html;q=0.6, text/*;q=0.5":      true,
		"text/*, text/html;q=0":              false,
		",,;, text/html ,":                   true,
		"text/html;q=2":                      false,
	} {
		if got := prefersHTML(accept); got != want {
			t.Errorf("prefersHTML(%q) = %v, want %v", accept, got, want)
		}
	}
}
