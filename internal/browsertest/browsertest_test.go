package browsertest

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestDumpDOM loads a page whose script changes it, and checks that the
// DOM comes back as Chromium rendered it (the script ran) and that the
// request came from a browser that prefers HTML.
func TestDumpDOM(t *testing.T) {
	var mu sync.Mutex
	var ua, accept string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		ua, accept = r.UserAgent(), r.Header.Get("Accept")
		mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(`<!DOCTYPE html><title>t</title><p id="p">as served</p>` +
			`<script>document.getElementById("p").textContent = "rendered " + (1 + 1) + " < 3";</script>`))
	}))
	defer srv.Close()

	dom := DumpDOM(t, srv.URL+"/")
	if !strings.Contains(dom, `<p id="p">rendered 2 &lt; 3</p>`) {
		t.Errorf("the script did not run, or the DOM is not serialized as HTML:\n%s", dom)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(ua, "Chrome") {
		t.Errorf("User-Agent %q is not Chromium's", ua)
	}
	if !strings.HasPrefix(accept, "text/html") {
		t.Errorf("Accept %q does not put text/html first", accept)
	}
}

// TestScreenshot takes a screenshot of a page that is half blue and
// checks its size and colours, and that of a blank page.
func TestScreenshot(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if r.URL.Path == "/blank" {
			_, _ = w.Write([]byte(`<!DOCTYPE html><title>blank</title><style>html{background:#fff}</style>`))
			return
		}
		_, _ = w.Write([]byte(`<!DOCTYPE html><title>t</title><style>html,body{margin:0;background:#fff}` +
			`div{width:50vw;height:100vh;background:#00f}</style><div></div>`))
	}))
	defer srv.Close()

	dir := t.TempDir()
	img := Screenshot(t, srv.URL+"/", filepath.Join(dir, "half.png"), 400, 300)
	if r, g, b, _ := img.At(100, 150).RGBA(); r != 0 || g != 0 || b != 0xffff {
		t.Errorf("the left half is %v, want blue", img.At(100, 150))
	}
	if r, g, b, _ := img.At(300, 150).RGBA(); r != 0xffff || g != 0xffff || b != 0xffff {
		t.Errorf("the right half is %v, want white", img.At(300, 150))
	}
	if colours, ink := Ink(img); colours < 2 || ink < 0.45 || ink > 0.55 {
		t.Errorf("half blue: %d colours, %.2f ink; want 2 or more, about 0.5", colours, ink)
	}
	blank := Screenshot(t, srv.URL+"/blank", filepath.Join(dir, "blank.png"), 400, 300)
	if colours, ink := Ink(blank); colours != 1 || ink != 0 {
		t.Errorf("blank: %d colours, %.2f ink; want 1, 0", colours, ink)
	}
}
