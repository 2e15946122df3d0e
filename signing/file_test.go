package signing

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteKeyFiles(t *testing.T) {
	dir := t.TempDir()
	sk, err := ParseSecretKey(nixSecret)
	if err != nil {
		t.Fatal(err)
	}
	skPath, pkPath := filepath.Join(dir, "sk"), filepath.Join(dir, "pk")
	if err := WriteKeyFiles(sk, skPath, pkPath); err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		path, want string
		mode       fs.FileMode
	}{{skPath, nixSecret, 0o600}, {pkPath, nixPublic, 0o644}} {
		b, err := os.ReadFile(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != f.want {
			t.Errorf("%s holds %q, want %q", f.path, b, f.want)
		}
		fi, err := os.Stat(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != f.mode {
			t.Errorf("%s has mode %v, want %v", f.path, fi.Mode(), f.mode)
		}
	}
	sk2, err := LoadSecretKeyFile(skPath)
	if err != nil {
		t.Fatal(err)
	}
	if sk2.String() != nixSecret {
		t.Errorf("LoadSecretKeyFile = %q", sk2)
	}
	pk2, err := LoadPublicKeyFile(pkPath)
	if err != nil {
		t.Fatal(err)
	}
	if !pk2.Equal(sk.Public()) {
		t.Errorf("LoadPublicKeyFile = %q", pk2)
	}

	// Refuses to overwrite either file, and leaves both untouched.
	other := mustGenerate(t, "other", 9)
	for _, paths := range [][2]string{
		{skPath, filepath.Join(dir, "pk-new")},
		{filepath.Join(dir, "sk-new"), pkPath},
	} {
		if err := WriteKeyFiles(other, paths[0], paths[1]); !errors.Is(err, fs.ErrExist) {
			t.Errorf("WriteKeyFiles(%q, %q) = %v, want fs.ErrExist", paths[0], paths[1], err)
		}
		for _, p := range []string{filepath.Join(dir, "pk-new"), filepath.Join(dir, "sk-new")} {
			if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s exists after a refused write", p)
			}
		}
	}
	if b, _ := os.ReadFile(skPath); string(b) != nixSecret {
		t.Errorf("secret key file overwritten: %q", b)
	}
}

func TestWriteKeyFilesCleansUp(t *testing.T) {
	dir := t.TempDir()
	skPath := filepath.Join(dir, "sk")
	err := WriteKeyFiles(mustGenerate(t, "x", 1), skPath, filepath.Join(dir, "missing", "pk"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("WriteKeyFiles into a missing directory = %v, want fs.ErrNotExist", err)
	}
	if _, err := os.Lstat(skPath); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("secret key file left behind after a failure: %v", err)
	}
}

func TestLoadKeyFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, contents string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(contents), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if k, err := LoadSecretKeyFile(write("sk-nl", nixSecret+"\n")); err != nil || k.String() != nixSecret {
		t.Errorf("secret key with trailing newline: %q, %v", k, err)
	}
	if k, err := LoadPublicKeyFile(write("pk-nl", nixPublic+"\n")); err != nil || k.String() != nixPublic {
		t.Errorf("public key with trailing newline: %q, %v", k, err)
	}
	if _, err := LoadSecretKeyFile(write("sk-pub", nixPublic)); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("public key as secret key: %v, want ErrInvalidKey", err)
	}
	if _, err := LoadPublicKeyFile(write("pk-sec", nixSecret)); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("secret key as public key: %v, want ErrInvalidKey", err)
	}
	big := write("big", nixPublic+strings.Repeat(" ", maxKeyFile))
	if _, err := LoadPublicKeyFile(big); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("oversized key file: %v, want ErrInvalidKey", err)
	}
	missing := filepath.Join(dir, "missing")
	if _, err := LoadSecretKeyFile(missing); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: %v, want fs.ErrNotExist naming the path", err)
	}
	if _, err := LoadPublicKeyFile(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
	if _, err := LoadSecretKeyFile(write("sk-bad", "name:"+strings.Repeat("A", 88))); err == nil ||
		strings.Contains(err.Error(), strings.Repeat("A", 88)) {
		t.Errorf("bad secret key: %v (must fail without quoting the key)", err)
	}
}
