package server

import (
	"image"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nix-cached/cached/internal/browsertest"
	"github.com/nix-cached/cached/web"
)

// TestUIInChromium loads the pages of the web view in a real headless
// Chromium and checks the DOM it built: the content is there, and the
// names that are markup stayed text.
func TestUIInChromium(t *testing.T) {
	browsertest.Require(t)
	e := newUIEnv(t, true)
	e.recordGCRuns()
	for _, c := range []struct {
		path string
		want []string
	}{
		{"/", []string{
			"<h1><code>cached</code>: a Nix binary cache</h1>",
			`<div class="stat"><b>3</b><span>store paths</span></div>`,
			`<form class="search" method="get" action="/_cached/ui/paths" role="search">`,
			"<code>cached use " + e.srv.URL + "</code>",
		}},
		{web.Prefix + "/paths?q=hello", []string{
			`<span id="query">hello</span>`,
			`<a href="/_cached/ui/path/` + e.hello[:32] + `">/nix/store/` + e.hello + `</a>`,
			`value="hello"`,
		}},
		{web.Prefix + "/path/" + e.hello[:32], []string{
			`<h1 id="store-path" class="mono">/nix/store/` + e.hello + `</h1>`,
			`<a href="/_cached/ui/path/` + e.glibc[:32] + `">/nix/store/` + e.glibc + `</a>`,
			`<a href="/_cached/ui/path/` + e.app[:32] + `">/nix/store/` + e.app + `</a>`,
			`<td class="mono">release</td>`,
			"<li>server-test-1:",
			// The DOM serializer escapes <, > and & in text.
			`&lt;img src=x onerror=alert(1)&gt;"'&amp;`,
			`link → &lt;/td&gt;&lt;script&gt;alert("pwned")&lt;/script&gt;`,
			">bin/<", ">hello<",
		}},
		{web.Prefix + "/pins", []string{
			`<td class="mono">release</td>`,
			`<a href="/_cached/ui/path/` + e.hello[:32] + `">/nix/store/` + e.hello + `</a>`,
		}},
		{web.Prefix + "/gc", []string{
			`<svg class="chart" id="chart"`,
			`<polyline class="bytes" points="`,
			"host-2:1", "gc: &lt;listing&gt; failed",
		}},
	} {
		dom := browsertest.DumpDOM(t, e.srv.URL+c.path)
		for _, want := range c.want {
			if !strings.Contains(dom, want) {
				t.Errorf("%s: the rendered page has no %q:\n%s", c.path, want, dom)
			}
		}
		// Chromium got HTML, and no markup came from the cache's contents.
		if !strings.Contains(dom, "<style>") || strings.Contains(dom, "<pre style=") {
			t.Errorf("%s: Chromium did not get the HTML page:\n%s", c.path, dom)
		}
		for _, bad := range []string{"<img", "<script", "onerror="} {
			if strings.Contains(strings.ReplaceAll(dom, "&lt;img src=x onerror=", ""), bad) {
				t.Errorf("%s: the DOM has %q:\n%s", c.path, bad, dom)
			}
		}
	}
}

// TestUIPrivateInChromium loads a page of a private cache with a read
// token in the URL, which Chromium sends as Basic authentication when the
// cache asks for it. (Without one, headless Chromium cannot answer the
// prompt and shows nothing; TestUIPrivate checks the 401.)
func TestUIPrivateInChromium(t *testing.T) {
	browsertest.Require(t)
	e := newUIEnv(t, false)
	page := web.Prefix + "/path/" + e.hello[:32]
	u, _ := url.Parse(e.srv.URL + page)
	u.User = url.UserPassword("me", readToken)
	if dom := browsertest.DumpDOM(t, u.String()); !strings.Contains(dom, `<h1 id="store-path" class="mono">/nix/store/`+e.hello+`</h1>`) {
		t.Errorf("with a read token: %s", dom)
	}
}

// TestUIScreenshots takes a screenshot of each page at 1200x900 and checks
// that Chromium drew it: a PNG of that size, with text on it, and the
// chart's colour on the collections page. The images stay in the test's
// temporary directory.
func TestUIScreenshots(t *testing.T) {
	browsertest.Require(t)
	e := newUIEnv(t, true)
	e.recordGCRuns()
	dir := t.TempDir()
	if d := os.Getenv("CACHED_SCREENSHOTS"); d != "" {
		dir = d // to look at them
	}
	for name, path := range map[string]string{
		"index": "/", "search": web.Prefix + "/paths?q=hello", "path": web.Prefix + "/path/" + e.hello[:32],
		"pins": web.Prefix + "/pins", "gc": web.Prefix + "/gc",
	} {
		img := browsertest.Screenshot(t, e.srv.URL+path, filepath.Join(dir, name+".png"), 1200, 900)
		colours, ink := browsertest.Ink(img)
		if colours < 16 || ink < 0.01 || ink > 0.6 {
			t.Errorf("%s: %d colours, %.3f of the pixels drawn on: not a rendered page", name, colours, ink)
		}
		t.Logf("%s: %d colours, %.1f%% ink", name, colours, 100*ink)
		// The paths line of the chart (--second, #c2703d) is on the
		// collections page only.
		if second := near(img, 0xc2, 0x70, 0x3d); (name == "gc") != (second > 100) {
			t.Errorf("%s: %d pixels of the chart's second colour", name, second)
		}
	}
}

// near counts the pixels of img within a small distance of the colour
// r, g, b.
func near(img image.Image, r, g, b int) int {
	n := 0
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			pr, pg, pb, _ := img.At(x, y).RGBA()
			if abs(int(pr>>8)-r) < 24 && abs(int(pg>>8)-g) < 24 && abs(int(pb>>8)-b) < 24 {
				n++
			}
		}
	}
	return n
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
