package narinfo

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nix-cached/cached/internal/nixtest"
)

// nixPaths builds fresh store paths of every kind a narinfo describes: an
// output with a deriver, a dependency and a self-reference; a source path
// from nix-store --add (CA fixed:r:); a text path with a reference (CA
// text:). It returns them with their closure.
func nixPaths(t *testing.T, c *nixtest.Client) (top, source, text string, all []string) {
	t.Helper()
	n := nixtest.Nonce()
	expr := `let dep = ` + nixtest.Derivation("dep-"+n, `echo `+n+` > $out`) + `; in ` +
		nixtest.Derivation("top-"+n, `mkdir $out; echo ${dep} > $out/dep; ln -s $out/dep $out/self`)
	outs := c.Build(expr)
	if len(outs) != 1 {
		t.Fatalf("nix-build printed %v", outs)
	}
	top = outs[0]
	f := filepath.Join(t.TempDir(), "src-"+n+".txt")
	if err := os.WriteFile(f, []byte(n+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	source = strings.TrimSpace(c.Run("nix-store", "--add", f))
	expr = `let a = builtins.toFile "a-` + n + `" "` + n + `"; in builtins.toFile "b-` + n + `" "see ${a}"`
	text = strings.Trim(strings.TrimSpace(c.Run("nix-instantiate", "--read-write-mode", "--eval", "-E", expr)), `"`)
	all = c.Closure(top, source, text)
	if len(all) != 5 {
		t.Fatalf("closure %v, want 5 paths", all)
	}
	return top, source, text, all
}

// narinfos reads every narinfo of a file:// cache, keyed by StorePath.
func narinfos(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.narinfo"))
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string][]byte)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		ni, err := Parse(b)
		if err != nil {
			t.Fatalf("%s: %v\n%s", f, err, b)
		}
		if ni.HashPart()+".narinfo" != filepath.Base(f) {
			t.Errorf("%s holds %s", f, ni.StorePath)
		}
		out[ni.StorePath] = b
	}
	return out
}

// TestNixWrittenNarinfos parses what nix copy writes, with each compression,
// signed and not, and re-renders it byte for byte. It runs with every
// installed Nix client.
func TestNixWrittenNarinfos(t *testing.T) { nixtest.Each(t, testNixWrittenNarinfos) }

// testNixWrittenNarinfos is TestNixWrittenNarinfos with one Nix client.
func testNixWrittenNarinfos(t *testing.T, nix *nixtest.Nix) {
	c := nix.New(t)
	top, source, text, all := nixPaths(t, c)
	tmp := t.TempDir()
	sk, pk := filepath.Join(tmp, "sk"), filepath.Join(tmp, "pk")
	c.Run("nix-store", "--generate-binary-cache-key", "interop-"+nixtest.Nonce(), sk, pk)
	keys := publicKeys(t, pk)

	for _, comp := range []string{"none", "xz", "zstd"} {
		for _, signed := range []bool{false, true} {
			dir := filepath.Join(tmp, comp)
			url := "file://" + dir + "?compression=" + comp
			if signed {
				dir += "-signed"
				url = "file://" + dir + "?compression=" + comp + "&secret-key=" + sk
			}
			c.Run("nix", append([]string{"copy", "--to", url}, all...)...)
			infos := narinfos(t, dir)
			if len(infos) != len(all) {
				t.Fatalf("%s: %d narinfos for %d paths", dir, len(infos), len(all))
			}
			for sp, data := range infos {
				ni, _ := Parse(data)
				if got := ni.AppendText(nil); string(got) != string(data) {
					t.Errorf("%s %s: re-rendered differently:\n got %q\nwant %q", dir, sp, got, data)
				}
				if ni.Compression != comp || ni.FileHash.IsZero() || ni.FileSize == 0 {
					t.Errorf("%s %s: Compression %q FileHash %v FileSize %d", dir, sp, ni.Compression, ni.FileHash, ni.FileSize)
				}
				wantSigs := 0
				if signed {
					wantSigs = 1
				}
				if len(ni.Sigs) != wantSigs || verifySigs(t, ni, keys) != wantSigs {
					t.Errorf("%s %s: %d Sigs, want %d verified", dir, sp, len(ni.Sigs), wantSigs)
				}
				switch sp {
				case top:
					if !slices.Contains(ni.References, filepath.Base(top)) || len(ni.References) != 2 ||
						!strings.HasSuffix(ni.Deriver, ".drv") || ni.CA != "" {
						t.Errorf("%s: References %v Deriver %q CA %q", sp, ni.References, ni.Deriver, ni.CA)
					}
				case source:
					if !strings.HasPrefix(ni.CA, "fixed:r:sha256:") || ni.Deriver != "" || ni.References != nil {
						t.Errorf("%s: CA %q Deriver %q References %v", sp, ni.CA, ni.Deriver, ni.References)
					}
				case text:
					if !strings.HasPrefix(ni.CA, "text:sha256:") || len(ni.References) != 1 {
						t.Errorf("%s: CA %q References %v", sp, ni.CA, ni.References)
					}
				}
			}
		}
	}
}

// TestNixAcceptsReRendered mangles Nix's narinfos with every trap of
// protocol.md §2, checks that Nix rejects the mangled files, then checks
// that Nix accepts what AppendText makes of them, signatures included.
// It runs with every installed Nix client.
func TestNixAcceptsReRendered(t *testing.T) { nixtest.Each(t, testNixAcceptsReRendered) }

// testNixAcceptsReRendered is TestNixAcceptsReRendered with one Nix client.
func testNixAcceptsReRendered(t *testing.T, nix *nixtest.Nix) {
	c := nix.New(t)
	_, _, _, all := nixPaths(t, c)
	tmp := t.TempDir()
	sk, pk := filepath.Join(tmp, "sk"), filepath.Join(tmp, "pk")
	c.Run("nix-store", "--generate-binary-cache-key", "interop-"+nixtest.Nonce(), sk, pk)
	pub, err := os.ReadFile(pk)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(tmp, "cache")
	c.Run("nix", append([]string{"copy", "--to", "file://" + dir + "?compression=xz&secret-key=" + sk}, all...)...)

	verify := func() error {
		// A fresh client each time: no narinfo disk cache from earlier runs.
		v := nix.New(t, "trusted-public-keys = "+string(pub))
		_, stderr, err := v.Try("nix", append([]string{"store", "verify", "--store", "file://" + dir}, all...)...)
		if err != nil {
			t.Logf("nix store verify: %v: %s", err, stderr)
		}
		return err
	}
	if err := verify(); err != nil {
		t.Fatal("nix rejects its own cache")
	}

	mangled := make(map[string][]byte)
	for sp, data := range narinfos(t, dir) {
		ni, _ := Parse(data)
		var lines []string
		for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
			switch {
			case strings.HasPrefix(l, "NarHash: "):
				l = "NarHash:\t" + ni.NarHash.Algo().String() + ":" + strings.ToUpper(ni.NarHash.Hex())
			case strings.HasPrefix(l, "FileHash: "):
				l = "FileHash: " + ni.FileHash.SRI()
			case strings.HasPrefix(l, "FileSize: "):
				continue
			case strings.HasPrefix(l, "References: ") && len(ni.References) == 0:
				l = "References:"
			}
			lines = append(lines, l)
		}
		lines = append(lines, "X-Unknown: yes", "", "Deriver: unknown-deriver")
		slices.Reverse(lines)
		m := []byte(strings.Join(lines, "\r\n"))
		mangled[sp] = m
		if err := os.WriteFile(filepath.Join(dir, ni.HashPart()+".narinfo"), m, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := verify(); err == nil {
		t.Fatal("nix accepts the mangled narinfos: the test proves nothing")
	}

	for sp, m := range mangled {
		ni, err := Parse(m)
		if err != nil {
			t.Fatalf("%s: Parse(mangled): %v\n%q", sp, err, m)
		}
		if err := os.WriteFile(filepath.Join(dir, ni.HashPart()+".narinfo"), ni.AppendText(nil), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := verify(); err != nil {
		t.Fatal("nix rejects the re-rendered narinfos")
	}
}
