// Package testtool finds the programs that tests run beside the project
// (MinIO, Chromium, kustomize) and says what a missing one means: the test
// skips, unless CACHED_REQUIRE_<NAME>=1 (set by make test), in which case
// it fails.
package testtool

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Find returns the program called name: the file that $CACHED_<NAME>
// names (which must be executable), else the first candidate found, where
// a bare name is looked up on PATH and a path must be an executable file.
// Without one it calls Missing with why.
func Find(t testing.TB, name, why string, candidates ...string) string {
	t.Helper()
	env := "CACHED_" + name
	if p := os.Getenv(env); p != "" {
		if isExecutable(p) {
			return p
		}
		t.Fatalf("%s=%s is not an executable file", env, p)
	}
	for _, c := range candidates {
		if filepath.IsAbs(c) {
			if isExecutable(c) {
				return c
			}
		} else if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	Missing(t, name, why)
	return ""
}

// Missing skips t, saying why, or fails it when CACHED_REQUIRE_<NAME>=1.
func Missing(t testing.TB, name, why string) {
	t.Helper()
	if env := "CACHED_REQUIRE_" + name; os.Getenv(env) == "1" {
		t.Fatalf("%s=1 but %s", env, why)
	}
	t.Skip(why)
}

// CIBin returns where scripts/test-deps builds a program:
// $HOME/.cache/cached-ci/bin/name ("" without a home directory).
func CIBin(name string) string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".cache", "cached-ci", "bin", name)
}

// isExecutable reports whether p is a regular file someone may execute.
func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// FreeAddr returns a loopback address ("127.0.0.1:PORT") whose port is free
// at the moment, for a program the test starts to listen on.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}
