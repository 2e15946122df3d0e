package e2e

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nix-cached/cached/internal/nixtest"
	"github.com/nix-cached/cached/nixbase32"
)

// TestForgedUploads sends the running binary uploads that lie, with a
// valid push token, after a real push: each is refused with a 4xx, the
// cache still verifies, and Nix still substitutes the genuine paths.
func TestForgedUploads(t *testing.T) {
	nixtest.Each(t, testForgedUploads)
}

func testForgedUploads(t *testing.T, nix *nixtest.Nix) {
	builder := nix.New(t)
	srv := startCache(t, blobBackend{name: "disk"})
	token, pub := srv.Token, srv.Pub
	nonce := nixtest.Nonce()
	top := builder.Build(nixtest.Derivation("forge-"+nonce, `echo genuine `+nonce+` > $out`))[0]
	want := hashes(t, builder, []string{top})
	nix.New(t, "netrc-file = "+netrc(t, token)).Run("nix", "copy", "--to", srv.URL, top)
	hash := filepath.Base(top)[:32]
	_, genuine := srv.get("/"+hash+".narinfo", "")

	dump := []byte(builder.Run("nix-store", "--dump", top))
	sum := sha256.Sum256(dump)
	name := nixbase32.EncodeToString(sum[:]) + ".nar"
	otherHash := "0rm3pvqy4sikbwkvg5py1msvar18859y"
	forged := func(from, to string) []byte {
		return []byte(strings.Replace(strings.Replace(genuine, from, to, 1), hash, otherHash, 1))
	}
	for _, c := range []struct {
		what, method, path string
		body               []byte
	}{
		{"NAR under another hash", "PUT", "/nar/" + strings.Repeat("1", 52) + ".nar", dump},
		{"truncated NAR", "PUT", "/nar/" + name, dump[:len(dump)-8]},
		{"narinfo naming a missing NAR", "PUT", "/" + otherHash + ".narinfo",
			forged("URL: nar/", "URL: nar/1")},
		{"narinfo whose NarSize lies", "PUT", "/" + otherHash + ".narinfo",
			forged("NarSize: ", "NarSize: 9")},
		{"narinfo for another path", "PUT", "/" + hash + ".narinfo",
			[]byte(strings.Replace(genuine, hash, otherHash, 1))},
		{"narinfo with a missing reference", "PUT", "/" + otherHash + ".narinfo",
			forged("References: ", "References: 5sbpggnbip0823i5hiz50vgjqgq7kd7c-x ")},
	} {
		code, body := srv.do(c.method, c.path, token, c.body)
		if code < 400 || code >= 500 || strings.Count(body, "\n") != 1 {
			t.Errorf("%s: %d %q, want a 4xx with a one-line reason", c.what, code, body)
		}
	}
	if code, _ := srv.get("/"+otherHash+".narinfo", ""); code != 404 {
		t.Errorf("a forged narinfo is visible: %d", code)
	}
	if _, now := srv.get("/"+hash+".narinfo", ""); now != genuine {
		t.Errorf("the genuine narinfo changed:\n%s", now)
	}
	srv.verify(t, blobBackend{name: "disk"})
	deleteLocally(t, builder, []string{top})
	substitute(t, nix, srv.URL, pub, top, want)
	if _, err := os.Stat(builder.Path(top)); err != nil || !strings.Contains(readFile(t, builder.Path(top)), "genuine") {
		t.Errorf("substituted path: %v", err)
	}
}
