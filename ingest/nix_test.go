package ingest

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nix-cached/cached/internal/nixtest"
	"github.com/nix-cached/cached/narinfo"
	"github.com/nix-cached/cached/signing"
)

// TestNixFileCache ingests what `nix copy --to file://` writes, file by
// file, in each compression Nix offers: every NAR and narinfo Nix produces
// must be accepted, and the published narinfo must keep Nix's signature.
// It runs with every installed Nix client.
func TestNixFileCache(t *testing.T) { nixtest.Each(t, testNixFileCache) }

// testNixFileCache is TestNixFileCache with one Nix client.
func testNixFileCache(t *testing.T, nix *nixtest.Nix) {
	c := nix.New(t)
	n := nixtest.Nonce()
	d := nixtest.Derivation
	top := c.Build(`let
  leaf = ` + d("leaf-"+n, `echo `+n+` > $out`) + `;
  mid = ` + d("mid-"+n, `mkdir -p $out/bin; printf '#!/bin/sh\n' > $out/bin/x; chmod +x $out/bin/x; ln -s ${leaf} $out/leaf; seq 1 100000 > $out/data`) + `;
in ` + d("top-"+n, `mkdir $out; ln -s ${mid} $out/mid; echo $out > $out/self`))[0]
	closure := c.Closure(top)
	dir := t.TempDir()
	sk, pk := filepath.Join(dir, "sk"), filepath.Join(dir, "pk")
	c.Run("nix-store", "--generate-binary-cache-key", "nix-client-1", sk, pk)
	nixKey, err := signing.LoadPublicKeyFile(pk)
	if err != nil {
		t.Fatal(err)
	}
	for _, comp := range []string{"xz", "bzip2", "zstd", "none"} {
		t.Run(comp, func(t *testing.T) {
			cache := filepath.Join(dir, comp)
			c.Run("nix", "copy", "--to", "file://"+cache+"?compression="+comp+"&secret-key="+sk, top)
			f := newFixture(t, nil)
			for _, p := range closure {
				hash := filepath.Base(p)[:32]
				raw, err := os.ReadFile(filepath.Join(cache, hash+".narinfo"))
				if err != nil {
					t.Fatal(err)
				}
				ni, err := narinfo.Parse(raw)
				if err != nil {
					t.Fatal(err)
				}
				file, err := os.ReadFile(filepath.Join(cache, ni.URL))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := f.ing.NAR(context.Background(), strings.TrimPrefix(ni.URL, "nar/"), bytes.NewReader(file), int64(len(file))); err != nil {
					t.Fatalf("NAR of %s: %v", p, err)
				}
				pub, err := f.ing.NarInfo(context.Background(), hash, raw)
				if err != nil {
					t.Fatalf("narinfo of %s: %v", p, err)
				}
				got, err := narinfo.Parse([]byte(pub.NarInfo))
				if err != nil {
					t.Fatal(err)
				}
				fp, _ := got.AppendFingerprint(nil)
				for _, key := range []signing.PublicKey{nixKey, f.key.Public()} {
					if ok, err := signing.VerifyAny([]signing.PublicKey{key}, fp, got.Sigs); !ok || err != nil {
						t.Errorf("%s: no valid signature by %s: %v\n%s", p, key.Name(), err, pub.NarInfo)
					}
				}
				if got.NarHash != ni.NarHash || got.NarSize != ni.NarSize || got.Deriver != ni.Deriver {
					t.Errorf("%s: published narinfo changed the path's identity:\n%s\nvs\n%s", p, pub.NarInfo, raw)
				}
			}
		})
	}
}
