package server

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"

	"github.com/nix-cached/cached/narinfo"
	"github.com/nix-cached/cached/storage"
)

// brotliOf compresses b with brotli, as Nix does for br.
func brotliOf(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := brotli.NewWriter(&buf)
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestUploadEncodings accepts narinfo, listing and log uploads with the
// Content-Encoding values Nix ≥ 2.32 sends for narinfo-compression,
// ls-compression and log-compression: br (Hydra's choice) and the literal
// none among them.
func TestUploadEncodings(t *testing.T) {
	e := newEnv(t, true)
	p := e.push(pathA, "encoded")
	ni := []byte(p.narinfo.String())
	listing := []byte(`{"version":1,"root":{"type":"regular","size":7,"narOffset":96}}`)
	logText := []byte("building a\nall good\n")
	for _, c := range []struct {
		enc  string
		wire func([]byte) []byte
	}{
		{"br", func(b []byte) []byte { return brotliOf(t, b) }},
		{"none", func(b []byte) []byte { return b }},
	} {
		hdr := "Content-Encoding: " + c.enc
		e.do("PUT", "/"+pathA[:32]+".narinfo", pushToken, c.wire(ni), hdr).expect(t, 204, c.enc+" narinfo")
		e.do("PUT", "/"+pathA[:32]+".ls", pushToken, c.wire(listing), hdr).expect(t, 204, c.enc+" listing")
		drv := "/log/" + pathB[:33] + c.enc + ".drv"
		e.do("PUT", drv, pushToken, c.wire(logText), hdr, "Content-Type: text/plain; charset=utf-8").expect(t, 204, c.enc+" log")
		if r := e.do("GET", drv, "", nil).expect(t, 200, c.enc+" log back"); r.body != string(logText) {
			t.Errorf("%s log served as %q", c.enc, r.body)
		}
	}
	// A narinfo whose encoding is not undone fails to parse: the br
	// upload above was decoded, not stored as it came.
	e.do("PUT", "/"+pathA[:32]+".narinfo", pushToken, brotliOf(t, ni)).expect(t, 400, "br narinfo without its header")

	// An encoding no Nix writes is refused by the PUT, with its reason.
	r := e.do("PUT", "/log/"+pathB[:33]+"z.drv", pushToken, logText, "Content-Encoding: compress")
	r.expect(t, 415, "compress log")
	if !strings.Contains(r.body, `"compress"`) {
		t.Errorf("415 says %q, not which encoding", r.body)
	}
}

// TestNARHeadIsExistence answers a HEAD for a NAR the cache cannot hold (a
// compression it does not read, a malformed name) with 404, so that Nix
// goes on to the PUT and prints the PUT's reason instead of a bare status.
func TestNARHeadIsExistence(t *testing.T) {
	e := newEnv(t, true)
	name := strings.Repeat("1", 52)
	for _, file := range []string{name + ".nar.lzo", name + ".nar.xz", "not-a-nar-name"} {
		if r := e.do("HEAD", "/nar/"+file, "", nil); r.code != 404 {
			t.Errorf("HEAD /nar/%s: %d, want 404", file, r.code)
		}
	}
	e.do("GET", "/nar/"+name+".nar.lzo", "", nil).expect(t, 404, "GET of an unknown compression")
	e.do("GET", "/nar/not-a-nar-name", "", nil).expect(t, 400, "GET of a malformed name")
	r := e.do("PUT", "/nar/"+name+".nar.lzo", pushToken, []byte("x"))
	r.expect(t, 415, "PUT of an unknown compression")
	if !strings.Contains(r.body, ".nar.lzo") {
		t.Errorf("415 says %q, not which compression", r.body)
	}
}

// TestNARHeadAsksTheCatalog answers a HEAD from the catalog: a blob whose
// upload has not recorded it yet is not there (a parallel push would
// otherwise skip its upload and publish a narinfo naming a NAR that is
// not ready), and a ready NAR is.
func TestNARHeadAsksTheCatalog(t *testing.T) {
	e := newEnv(t, true)
	p := e.push(pathA, "recorded")
	served, err := narinfo.Parse([]byte(e.do("GET", "/"+pathA[:32]+".narinfo", "", nil).body))
	if err != nil {
		t.Fatal(err)
	}
	e.do("HEAD", "/"+served.URL, "", nil).expect(t, 200, "HEAD of a ready NAR")
	e.do("HEAD", "/nar/"+p.xzName, "", nil).expect(t, 404, "HEAD of the name it was uploaded under (stored as zstd)")
	pending := "nar/" + strings.Repeat("2", 52) + ".nar.zst"
	if _, err := storage.Put(context.Background(), e.store, pending, strings.NewReader("half-recorded")); err != nil {
		t.Fatal(err)
	}
	e.do("HEAD", "/"+pending, "", nil).expect(t, 404, "HEAD of a blob with no ready record")
}
