// Package pgtest runs throwaway PostgreSQL clusters for tests, on loopback,
// with their data in a temporary directory. Tests that need one call Start
// (a cluster of their own) or Shared (one cluster per test binary, which
// needs Main in TestMain), then NewDatabase for an empty database each.
// They skip when PostgreSQL is not installed, unless
// CACHED_REQUIRE_POSTGRES=1 (set by CI), in which case they fail.
//
// CI installs Debian's postgresql package, whose binaries live in
// /usr/lib/postgresql/<major>/bin; $CACHED_PG_BIN names another directory.
package pgtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/nix-cached/cached/internal/testtool"
)

// debianRoot is where Debian installs one directory per major version.
const debianRoot = "/usr/lib/postgresql"

// Require returns the directory holding initdb and postgres:
// $CACHED_PG_BIN, else the newest /usr/lib/postgresql/<N>/bin, else the
// directory of initdb on PATH. It skips t when there is none, or fails it
// when CACHED_REQUIRE_POSTGRES=1.
func Require(t testing.TB) string {
	t.Helper()
	dir, err := binDir()
	if err == nil {
		return dir
	}
	testtool.Missing(t, "POSTGRES", err.Error())
	return ""
}

// errNoPostgres says how to make PostgreSQL available to the tests.
var errNoPostgres = errors.New("PostgreSQL is not installed: install Debian's postgresql package " +
	"or set CACHED_PG_BIN to the directory of initdb and postgres")

// binDir finds the PostgreSQL bin directory as Require describes.
func binDir() (string, error) {
	if dir := os.Getenv("CACHED_PG_BIN"); dir != "" {
		if !hasServer(dir) {
			return "", fmt.Errorf("CACHED_PG_BIN=%s holds no executable initdb and postgres", dir)
		}
		return dir, nil
	}
	entries, _ := os.ReadDir(debianRoot) // absent: try PATH
	var versions []int
	for _, e := range entries {
		if v, err := strconv.Atoi(e.Name()); err == nil && hasServer(filepath.Join(debianRoot, e.Name(), "bin")) {
			versions = append(versions, v)
		}
	}
	if len(versions) > 0 {
		return filepath.Join(debianRoot, strconv.Itoa(slices.Max(versions)), "bin"), nil
	}
	if p, err := exec.LookPath("initdb"); err == nil && hasServer(filepath.Dir(p)) {
		return filepath.Dir(p), nil
	}
	return "", errNoPostgres
}

// hasServer reports whether dir holds executable initdb and postgres.
func hasServer(dir string) bool {
	for _, name := range []string{"initdb", "postgres"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}
