package signing

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nix-cached/cached/internal/nixtest"
)

// pathInfo is the part of `nix path-info --json --sigs` we use.
type pathInfo struct {
	Path       string   `json:"path"`    // Nix 2.8 only: 2.34 keys the objects by path
	NarHash    string   `json:"narHash"` // SRI, "sha256-<base64>"
	NarSize    int64    `json:"narSize"`
	References []string `json:"references"` // full store paths
	Signatures []string `json:"signatures"` // absent (Nix 2.8) or empty (2.34) when there are none
}

// queryPathInfo runs `nix path-info --json --sigs path` and checks the shape
// of its output: one object for the path, with the members we use.
func queryPathInfo(t *testing.T, c *nixtest.Client, path string) pathInfo {
	t.Helper()
	out := c.Run("nix", "path-info", "--json", "--sigs", path)
	raw := byPath[map[string]json.RawMessage](t, c.Nix, out)
	if _, ok := raw[path]; !ok || len(raw) != 1 {
		t.Fatalf("nix path-info --json printed %d objects, want 1 for %s:\n%s", len(raw), path, out)
	}
	for _, k := range []string{"narHash", "narSize", "references"} {
		if _, ok := raw[path][k]; !ok {
			t.Fatalf("nix path-info --json has no %q:\n%s", k, out)
		}
	}
	info := byPath[pathInfo](t, c.Nix, out)[path]
	info.Path = path
	if !strings.HasPrefix(info.NarHash, "sha256-") || info.NarSize <= 0 {
		t.Fatalf("unexpected path info %+v", info)
	}
	return info
}

// byPath decodes the output of `nix path-info --json` into one value per
// store path. Nix 2.8 prints an array of objects, each naming its path in
// "path"; Nix 2.34 prints an object whose members are named by path.
func byPath[T any](t *testing.T, nix *nixtest.Nix, out string) map[string]T {
	t.Helper()
	m := make(map[string]T)
	if nix.AtLeast(2, 34) {
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("nix path-info --json: %v\n%s", err, out)
		}
		return m
	}
	var list []json.RawMessage
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("nix path-info --json: %v\n%s", err, out)
	}
	for _, o := range list {
		var p struct {
			Path string `json:"path"`
		}
		var v T
		if err := json.Unmarshal(o, &p); err != nil || p.Path == "" {
			t.Fatalf("nix path-info --json: no path in %s: %v", o, err)
		}
		if _, dup := m[p.Path]; dup {
			t.Fatalf("nix path-info --json: %s twice:\n%s", p.Path, out)
		}
		if err := json.Unmarshal(o, &v); err != nil {
			t.Fatalf("nix path-info --json: %v\n%s", err, o)
		}
		m[p.Path] = v
	}
	return m
}

// fingerprint builds protocol.md §3's "1;path;sha256:nix32;size;refs",
// letting Nix convert the NAR hash to nix32.
func fingerprint(t *testing.T, c *nixtest.Client, info pathInfo) []byte {
	t.Helper()
	nix32 := strings.TrimSpace(c.Run("nix", "hash", "to-base32", info.NarHash))
	if len(nix32) != 52 {
		t.Fatalf("nix hash to-base32 %s = %q", info.NarHash, nix32)
	}
	refs := slices.Clone(info.References)
	slices.Sort(refs)
	return []byte("1;" + info.Path + ";sha256:" + nix32 + ";" +
		strconv.FormatInt(info.NarSize, 10) + ";" + strings.Join(refs, ","))
}

// buildWithRefs builds a fresh path that refers to another path and to itself.
func buildWithRefs(t *testing.T, c *nixtest.Client) string {
	t.Helper()
	n := nixtest.Nonce()
	expr := `let dep = ` + nixtest.Derivation("signing-dep-"+n, `echo dep > $out`) + `; in ` +
		nixtest.Derivation("signing-top-"+n, `echo ${dep} > $out; echo $out >> $out`)
	paths := c.Build(expr)
	if len(paths) != 1 {
		t.Fatalf("built %v, want one path", paths)
	}
	return paths[0]
}

// nixKeys makes a key pair with nix-store and returns the file paths.
func nixKeys(t *testing.T, c *nixtest.Client, name string) (sk, pk string) {
	t.Helper()
	dir := t.TempDir()
	sk, pk = filepath.Join(dir, "sk"), filepath.Join(dir, "pk")
	c.Run("nix-store", "--generate-binary-cache-key", name, sk, pk)
	return sk, pk
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// exitCode returns the exit status of a command run by Try.
func exitCode(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("running nix: %v", err)
	}
	return ee.ExitCode()
}

// TestNixGeneratedKeysLoad loads the key files that nix-store
// --generate-binary-cache-key writes. It runs with every installed Nix
// client.
func TestNixGeneratedKeysLoad(t *testing.T) { nixtest.Each(t, testNixGeneratedKeysLoad) }

// testNixGeneratedKeysLoad is TestNixGeneratedKeysLoad with one Nix client.
func testNixGeneratedKeysLoad(t *testing.T, nix *nixtest.Nix) {
	c := nix.New(t)
	name := "nix-made-" + nixtest.Nonce()
	skPath, pkPath := nixKeys(t, c, name)
	sk, err := LoadSecretKeyFile(skPath)
	if err != nil {
		t.Fatal(err)
	}
	if sk.Name() != name || sk.String() != readFile(t, skPath) {
		t.Errorf("secret key %q does not round-trip Nix's file", sk.Name())
	}
	if got, want := sk.Public().String(), readFile(t, pkPath); got != want {
		t.Errorf("derived public key %q, Nix wrote %q", got, want)
	}
	pk, err := LoadPublicKeyFile(pkPath)
	if err != nil {
		t.Fatal(err)
	}
	if !pk.Equal(sk.Public()) {
		t.Errorf("loaded public key %q differs from the derived one", pk)
	}
}

// TestNixAcceptsOurKeys signs a path with Nix and our secret key: Nix
// makes our signature, and nix store verify trusts our public key and no
// other. It runs with every installed Nix client.
func TestNixAcceptsOurKeys(t *testing.T) { nixtest.Each(t, testNixAcceptsOurKeys) }

// testNixAcceptsOurKeys is TestNixAcceptsOurKeys with one Nix client.
func testNixAcceptsOurKeys(t *testing.T, nix *nixtest.Nix) {
	c := nix.New(t)
	dir := t.TempDir()
	sk, err := GenerateKey("ours-"+nixtest.Nonce(), nil)
	if err != nil {
		t.Fatal(err)
	}
	skPath, pkPath := filepath.Join(dir, "sk"), filepath.Join(dir, "pk")
	if err := WriteKeyFiles(sk, skPath, pkPath); err != nil {
		t.Fatal(err)
	}
	path := buildWithRefs(t, c)
	c.Run("nix", "store", "sign", "--key-file", skPath, path)
	info := queryPathInfo(t, c, path)
	if len(info.References) != 2 || !slices.Contains(info.References, path) {
		t.Fatalf("references %v: want a dependency and the path itself", info.References)
	}
	fp := fingerprint(t, c, info)
	want := sk.Sign(fp)
	if !slices.Equal(info.Signatures, []string{want}) {
		t.Fatalf("Nix signed %q as %v, we sign %q (fingerprint %q)", path, info.Signatures, want, fp)
	}
	if !sk.Public().Verify(fp, info.Signatures[0]) {
		t.Error("our public key rejects the signature Nix made with our secret key")
	}

	verify := func(pub string) (int, string) {
		_, stderr, err := c.Try("nix", "store", "verify", "--trusted-public-keys", pub, "--sigs-needed", "1", path)
		return exitCode(t, err), stderr
	}
	if code, stderr := verify(readFile(t, pkPath)); code != 0 {
		t.Fatalf("nix store verify with our public key: exit %d\n%s", code, stderr)
	}
	sameName, err := GenerateKey(sk.Name(), nil)
	if err != nil {
		t.Fatal(err)
	}
	otherName, err := GenerateKey("other-"+nixtest.Nonce(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []SecretKey{sameName, otherName} {
		if code, stderr := verify(k.Public().String()); code != 2 || !strings.Contains(stderr, "untrusted") {
			t.Errorf("nix store verify with key %s: exit %d, want 2 (untrusted)\n%s", k.Public(), code, stderr)
		}
	}
}

// TestOurVerifyAcceptsNixSignatures verifies a signature that Nix made with
// its own key. It runs with every installed Nix client.
func TestOurVerifyAcceptsNixSignatures(t *testing.T) {
	nixtest.Each(t, testOurVerifyAcceptsNixSignatures)
}

// testOurVerifyAcceptsNixSignatures is TestOurVerifyAcceptsNixSignatures
// with one Nix client.
func testOurVerifyAcceptsNixSignatures(t *testing.T, nix *nixtest.Nix) {
	c := nix.New(t)
	skPath, pkPath := nixKeys(t, c, "nix-signer-"+nixtest.Nonce())
	path := buildWithRefs(t, c)
	c.Run("nix", "store", "sign", "--key-file", skPath, path)
	info := queryPathInfo(t, c, path)
	if len(info.Signatures) != 1 {
		t.Fatalf("signatures %v, want one", info.Signatures)
	}
	sig := info.Signatures[0]
	pk, err := LoadPublicKeyFile(pkPath)
	if err != nil {
		t.Fatal(err)
	}
	fp := fingerprint(t, c, info)
	if !pk.Verify(fp, sig) {
		t.Fatalf("Nix's signature %q does not verify over %q", sig, fp)
	}
	if ok, err := VerifyAny([]PublicKey{pk}, fp, info.Signatures); !ok || err != nil {
		t.Errorf("VerifyAny = %v, %v", ok, err)
	}
	if pk.Verify(append(fp[:len(fp):len(fp)], 'x'), sig) {
		t.Error("Nix's signature verifies over another fingerprint")
	}
}
