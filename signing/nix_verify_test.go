package signing

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nix-cached/cached/internal/nixtest"
)

// TestVerifyAnyMatchesNix puts sets of Sig lines on a narinfo in a file://
// binary cache and checks that VerifyAny decides as `nix store verify` does:
// exit 0 (trusted) is true, exit 2 (untrusted) is false, exit 4 (error:
// "signature is not valid" or a base64 error) is an error.
func TestVerifyAnyMatchesNix(t *testing.T) {
	c := nixtest.New(t)
	n := nixtest.Nonce()
	a, err := GenerateKey("a-"+n, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := GenerateKey("b-"+n, nil)
	if err != nil {
		t.Fatal(err)
	}
	unknown, err := GenerateKey("unknown-"+n, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := buildWithRefs(t, c)
	fp := fingerprint(t, c, queryPathInfo(t, c, path))
	cache := t.TempDir()
	c.Run("nix", "copy", "--to", "file://"+cache+"?compression=none", path)
	hashPart := strings.SplitN(filepath.Base(path), "-", 2)[0]
	narinfoPath := filepath.Join(cache, hashPart+".narinfo")
	orig := readFile(t, narinfoPath)
	if strings.Contains(orig, "Sig:") {
		t.Fatalf("fresh narinfo already signed:\n%s", orig)
	}

	goodA := a.Sign(fp)
	wrongA := a.Sign([]byte("1;/nix/store/x;sha256:0;1;"))
	aAsB := b.Name() + goodA[len(a.Name()):]
	trusted := a.Public().String() + " " + b.Public().String()
	tests := []struct {
		name string
		sigs []string
	}{
		{"none", nil},
		{"good", []string{goodA}},
		{"wrong", []string{wrongA}},
		{"wrong and good", []string{wrongA, goodA}},
		{"unknown key", []string{unknown.Sign(fp)}},
		{"unknown key and good", []string{unknown.Sign(fp), goodA}},
		{"unknown key malformed, and good", []string{unknown.Name() + ":AAAA", goodA}},
		{"key under another name", []string{aAsB}},
		{"known key short", []string{a.Name() + ":AAAA"}},
		{"known key short, and good", []string{goodA, b.Name() + ":AAAA"}},
		{"known key not base64", []string{b.Name() + ":AAAA!!", goodA}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ni := orig
			for _, s := range tt.sigs {
				ni += "Sig: " + s + "\n"
			}
			if err := os.WriteFile(narinfoPath, []byte(ni), 0o644); err != nil {
				t.Fatal(err)
			}
			c := nixtest.New(t) // a fresh narinfo disk cache
			_, stderr, err := c.Try("nix", "store", "verify", "--store", "file://"+cache, "--no-contents",
				"--trusted-public-keys", trusted, "--sigs-needed", "1", path)
			code := exitCode(t, err)
			ok, verr := VerifyAny([]PublicKey{a.Public(), b.Public()}, fp, tt.sigs)
			var want int
			switch {
			case verr != nil:
				want = 4
			case !ok:
				want = 2
			}
			if code != want {
				t.Errorf("nix store verify exit %d; VerifyAny = %v, %v (expects exit %d)\n%s", code, ok, verr, want, stderr)
			}
		})
	}
}
