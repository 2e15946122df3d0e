package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/nix-cached/cached/signing"
)

func TestDefaultKeyName(t *testing.T) {
	random := bytes.Repeat([]byte{0, 31, 32, 255, 100, 7}, 2)
	for host, want := range map[string]string{
		"myhost":          "myhost-0z0z47-cached-1",
		"a:b c\td\ne":     "a-b-c-d-e-0z0z47-cached-1",
		"build.example":   "build.example-0z0z47-cached-1",
		"":                "0z0z47-cached-1",
		"ünïcode-host-ok": "ünïcode-host-ok-0z0z47-cached-1",
	} {
		got, err := defaultKeyName(host, bytes.NewReader(random))
		if err != nil || got != want {
			t.Errorf("defaultKeyName(%q) = %q, %v; want %q", host, got, err, want)
		}
		if _, err := signing.GenerateKey(got, bytes.NewReader(make([]byte, 32))); err != nil {
			t.Errorf("%q is not a valid key name: %v", got, err)
		}
	}
	// Random names: the alphabet is Nix's base32, and names differ.
	seen := map[string]bool{}
	valid := regexp.MustCompile(`^myhost-[0-9a-df-np-sv-z]{6}-cached-1$`)
	for range 100 {
		got, err := defaultKeyName("myhost", rand.Reader)
		if err != nil || !valid.MatchString(got) {
			t.Fatalf("defaultKeyName = %q, %v", got, err)
		}
		seen[got] = true
	}
	if len(seen) < 99 {
		t.Errorf("100 generated names, %d distinct", len(seen))
	}
	if _, err := defaultKeyName("myhost", iotest.ErrReader(errors.New("no entropy"))); err == nil {
		t.Error("a failing random source gave a name")
	}
}

func TestRefuseNewKey(t *testing.T) {
	both := []string{"d/signing-key", "d/signing-key.pub"}
	tests := []struct {
		name string
		k    keyFiles
		want []string // in the error; nil for no refusal
	}{
		{"new cache", keyFiles{missing: both}, nil},
		{"published paths", keyFiles{missing: both, paths: 3, catalogExisted: true},
			[]string{"3 published paths", abs(t, "d/signing-key") + " and " + abs(t, "d/signing-key.pub") + " are missing"}},
		{"one published path", keyFiles{missing: both, paths: 1}, []string{"1 published path;"}},
		{"a catalog from an earlier start", keyFiles{missing: both, catalogExisted: true}, []string{"not new", "are missing"}},
		{"only the public half left", keyFiles{missing: both[:1]}, []string{abs(t, "d/signing-key") + " is missing", "other half"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.k.refuseNewKey()
			if tc.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("not refused")
			}
			for _, w := range append(tc.want, "--signing-key-file", "restore") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v\ndoes not say %q", err, w)
				}
			}
		})
	}
}

func abs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestDefaultKey generates the default key in a new cache, reads it back
// on a later start, and refuses to replace it once the cache is not new.
func TestDefaultKey(t *testing.T) {
	ctx := context.Background()
	d := &dataFlags{dataDir: filepath.Join(t.TempDir(), "data")}
	start := func() (string, error) {
		t.Helper()
		b, err := d.create(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		var out bytes.Buffer
		_, err = defaultKey(ctx, d.dataDir, b, &out)
		return out.String(), err
	}
	out, err := start()
	if err != nil || !strings.Contains(out, "generated signing key") {
		t.Fatalf("first start: %q, %v", out, err)
	}
	sk := filepath.Join(d.dataDir, "signing-key")
	first, err := signing.LoadSecretKeyFile(sk)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := start(); err != nil || out != "" {
		t.Fatalf("second start: %q, %v", out, err)
	}
	if again, err := signing.LoadSecretKeyFile(sk); err != nil || again.String() != first.String() {
		t.Fatalf("the key changed on the second start: %v", err)
	}
	for _, remove := range [][]string{{sk}, {sk, sk + ".pub"}} {
		for _, p := range remove {
			if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
		}
		if _, err := start(); err == nil || !strings.Contains(err.Error(), "refusing to generate a new signing key") {
			t.Fatalf("with %v removed: %v", remove, err)
		}
		if ok, _ := exists(sk); ok {
			t.Fatalf("a refused start wrote %s", sk)
		}
	}
}
