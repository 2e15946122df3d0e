package narinfo

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/nix-cached/cached/nixhash"
)

// The testdata/*.narinfo files were written by Nix 2.8.0 (nix copy --to
// file://…, and nix store sign for the second signature), except
// protocol-example.narinfo, copied from protocol.md §2. The *.pub files are
// the public keys made by nix-store --generate-binary-cache-key.

func readGolden(t testing.TB) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob("testdata/*.narinfo")
	if err != nil || len(files) < 5 {
		t.Fatalf("golden files: %v %v", files, err)
	}
	out := make(map[string][]byte)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = b
	}
	return out
}

// publicKeys reads "name:base64(32 bytes)" key files.
func publicKeys(t testing.TB, files ...string) map[string]ed25519.PublicKey {
	t.Helper()
	keys := make(map[string]ed25519.PublicKey)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name, b64, ok := strings.Cut(strings.TrimSpace(string(b)), ":")
		raw, err := base64.StdEncoding.DecodeString(b64)
		if !ok || err != nil || len(raw) != ed25519.PublicKeySize {
			t.Fatalf("public key file %s: %q (%v)", f, b, err)
		}
		keys[name] = ed25519.PublicKey(raw)
	}
	return keys
}

// verifySigs checks every Sig of ni made by a key in keys against the
// fingerprint and returns how many verified.
func verifySigs(t testing.TB, ni *NarInfo, keys map[string]ed25519.PublicKey) int {
	t.Helper()
	fp, err := ni.AppendFingerprint(nil)
	if err != nil {
		t.Fatalf("%s: AppendFingerprint: %v", ni.StorePath, err)
	}
	n := 0
	for _, s := range ni.Sigs {
		name, b64, _ := strings.Cut(s, ":")
		key, ok := keys[name]
		if !ok {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || !ed25519.Verify(key, fp, sig) {
			t.Errorf("%s: Sig %s does not verify over fingerprint %q", ni.StorePath, s, fp)
			continue
		}
		n++
	}
	return n
}

func TestGoldenRoundTrip(t *testing.T) {
	for name, data := range readGolden(t) {
		ni, err := Parse(data)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got := ni.AppendText(nil); !bytes.Equal(got, data) {
			t.Errorf("%s: AppendText differs:\n got %q\nwant %q", name, got, data)
		}
		if ni.String() != string(data) {
			t.Errorf("%s: String differs", name)
		}
	}
}

func TestGoldenFields(t *testing.T) {
	data, err := os.ReadFile("testdata/top-none-signed.narinfo")
	if err != nil {
		t.Fatal(err)
	}
	ni, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := nixhash.Parse("sha256:1ckk3m4m6i01sivyc59xp8s5j58sk33fv43d17r3bwsnc5xwincr")
	want := &NarInfo{
		StorePath:   "/nix/store/81ff9jmbk7b81sfa29pvilc4gyyiialj-golden-top",
		URL:         "nar/1ckk3m4m6i01sivyc59xp8s5j58sk33fv43d17r3bwsnc5xwincr.nar",
		Compression: "none",
		FileHash:    h,
		FileSize:    584,
		NarHash:     h,
		NarSize:     584,
		References: []string{"81ff9jmbk7b81sfa29pvilc4gyyiialj-golden-top",
			"w6wwmls2q441dllbg0yv6qbwwkwcs4y3-golden-dep"},
		Deriver: "y7gk6yqvwp8jlf4baw7rkprh5y4i1ici-golden-top.drv",
		Sigs: []string{"golden-test-1:CnHuiBDU/a2qX8jlPpFG8lZaYNLbEdxbfV/leyplvB57yjKsWpfb68Kx39bsFKNn20jnXIs/" +
			"N3g4ElZzDavqCg=="},
	}
	if !reflect.DeepEqual(ni, want) {
		t.Errorf("Parse =\n%#v\nwant\n%#v", ni, want)
	}
	if ni.HashPart() != "81ff9jmbk7b81sfa29pvilc4gyyiialj" {
		t.Errorf("HashPart = %q", ni.HashPart())
	}
}

func TestGoldenSignatures(t *testing.T) {
	keys := publicKeys(t, "testdata/golden-test-1.pub", "testdata/golden-test-2.pub")
	wantVerified := map[string]int{
		"top-none-signed.narinfo":       1,
		"source-ca-zstd-signed.narinfo": 1,
		"text-ca-xz-signed.narinfo":     1,
		"dep-zstd-two-sigs.narinfo":     2,
		"top-xz.narinfo":                0,
		"protocol-example.narinfo":      0, // its key is not in testdata
	}
	for name, data := range readGolden(t) {
		ni, err := Parse(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want, ok := wantVerified[name]
		if !ok {
			t.Errorf("%s: no expectation", name)
		}
		if got := verifySigs(t, ni, keys); got != want {
			t.Errorf("%s: %d signatures verified, want %d", name, got, want)
		}
	}
}

func TestFingerprint(t *testing.T) {
	h, _ := nixhash.Parse("sha256:0blx9jdm5jbxq9x148c9qllhmci7f0gq4zs5bpcgb6y6nql98bv0")
	// protocol.md §3: observed, no references.
	ni := &NarInfo{StorePath: "/nix/store/fqszvyqns12jinzl2jbfavz2wvbhf2gw-dbg", NarHash: h, NarSize: 1008}
	fp, err := ni.AppendFingerprint([]byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	want := "x1;/nix/store/fqszvyqns12jinzl2jbfavz2wvbhf2gw-dbg;sha256:0blx9jdm5jbxq9x148c9qllhmci7f0gq4zs5bpcgb6y6nql98bv0;1008;"
	if string(fp) != want {
		t.Errorf("fingerprint %q, want %q", fp, want)
	}

	// References are sorted and de-duplicated, in the StorePath's store dir,
	// whatever their order in the file.
	ni.StorePath = "/custom/store/fqszvyqns12jinzl2jbfavz2wvbhf2gw-dbg"
	ni.References = []string{"w6wwmls2q441dllbg0yv6qbwwkwcs4y3-b", "81ff9jmbk7b81sfa29pvilc4gyyiialj-a",
		"w6wwmls2q441dllbg0yv6qbwwkwcs4y3-b"}
	fp, err = ni.AppendFingerprint(nil)
	want = "1;/custom/store/fqszvyqns12jinzl2jbfavz2wvbhf2gw-dbg;sha256:0blx9jdm5jbxq9x148c9qllhmci7f0gq4zs5bpcgb6y6nql98bv0;1008;" +
		"/custom/store/81ff9jmbk7b81sfa29pvilc4gyyiialj-a,/custom/store/w6wwmls2q441dllbg0yv6qbwwkwcs4y3-b"
	if err != nil || string(fp) != want {
		t.Errorf("fingerprint %q, %v; want %q", fp, err, want)
	}
	if ni.References[0] != "w6wwmls2q441dllbg0yv6qbwwkwcs4y3-b" {
		t.Error("AppendFingerprint reordered the caller's References")
	}

	// The fingerprint renders NarHash in nix32 whatever form it was read in.
	data, _ := os.ReadFile("testdata/top-none-signed.narinfo")
	b16 := strings.Replace(string(data), "NarHash: sha256:1ckk3m4m6i01sivyc59xp8s5j58sk33fv43d17r3bwsnc5xwincr",
		"NarHash: sha256:99D9C87B6156F335F2096D90EDC6981A155934BA3D15E677D4014453491D73B2", 1)
	ni16, err := Parse([]byte(b16))
	if err != nil || b16 == string(data) {
		t.Fatalf("base16 NarHash: %v", err)
	}
	if got := verifySigs(t, ni16, publicKeys(t, "testdata/golden-test-1.pub")); got != 1 {
		t.Errorf("signature over a base16 NarHash narinfo: %d verified", got)
	}
}
