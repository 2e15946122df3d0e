package e2e

import (
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nix-cached/cached/internal/nixtest"
)

// TestS3Redirect serves NAR downloads as redirects to presigned S3 URLs:
// the bytes go from MinIO to Nix directly, and substitution still works.
func TestS3Redirect(t *testing.T) {
	nixtest.Each(t, testS3Redirect)
}

func testS3Redirect(t *testing.T, nix *nixtest.Nix) {
	b := newS3Backend(t)
	builder := nix.New(t)
	srv := startCache(t, b, "--s3-redirect")
	token, pub := srv.Token, srv.Pub

	top := builder.Build(closureExpr(nixtest.Nonce()))[0]
	closure := builder.Closure(top)
	want := hashes(t, builder, closure)
	nix.New(t, "netrc-file = "+netrc(t, token)).Run("nix", "copy", "--to", srv.URL, top)

	_, ni := srv.get("/"+filepath.Base(top)[:32]+".narinfo", "")
	nar := regexp.MustCompile(`URL: (\S+)`).FindStringSubmatch(ni)[1]
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(srv.URL + "/" + nar)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusTemporaryRedirect || !strings.HasPrefix(loc, b.minio.Endpoint+"/") {
		t.Fatalf("GET %s: %d to %q, want a 307 to MinIO", nar, resp.StatusCode, loc)
	}
	if code, _ := srv.do("HEAD", "/"+nar, "", nil); code != 200 {
		t.Errorf("HEAD %s: %d (HEAD is answered by the server)", nar, code)
	}

	before := len(srv.requests("GET"))
	deleteLocally(t, builder, closure)
	substitute(t, nix, srv.URL, pub, top, want)
	for _, l := range srv.requests("GET")[before:] {
		if strings.Contains(l, "path=/nar/") && !strings.Contains(l, "status=307") {
			t.Errorf("a NAR was not redirected: %s", l)
		}
	}
}
