package browsertest

import (
	"net/http"
	"net/http/httptest"
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
