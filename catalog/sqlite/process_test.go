package sqlite

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog"
)

// Environment of a child test process that writes to a shared database.
const (
	envHelperDB = "CACHED_SQLITE_TEST_HELPER_DB"
	envHelperID = "CACHED_SQLITE_TEST_HELPER_ID"
)

// processWrites is how many paths each process publishes.
const processWrites = 30

func TestMain(m *testing.M) {
	if path := os.Getenv(envHelperDB); path != "" {
		id, _ := strconv.Atoi(os.Getenv(envHelperID))
		if err := writeFromProcess(path, id); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// writeFromProcess opens the catalog at path and publishes processWrites
// paths numbered from id*1000, each referencing path 1, plus a token.
func writeFromProcess(path string, id int) error {
	ctx := context.Background()
	c, err := Open(ctx, path)
	if err != nil {
		return err
	}
	defer c.Close()
	root := testPath(1, testNAR(1, time.Time{})).HashPart
	for i := range processWrites {
		k := id*1000 + i
		n := testNAR(k, time.Time{})
		if err := c.PutNAR(ctx, n); err != nil {
			return err
		}
		if err := c.Publish(ctx, testPath(k, n, root), catalog.PublishOptions{}); err != nil {
			return err
		}
	}
	sum := fmt.Sprintf("%032d", id)
	return c.CreateToken(ctx, catalog.Token{Name: "process-" + strconv.Itoa(id), Hash: []byte(sum), Scope: catalog.ScopeRead})
}

// TestProcessesShareDatabase runs two other processes that write to the
// database while this one writes too, as `cached token create` or `cached
// gc` would next to a running server: nobody fails with "database is locked".
func TestProcessesShareDatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "processes.db")
	c := openT(t, path)
	n := testNAR(1, time.Time{})
	if err := c.PutNAR(ctx, n); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctx, testPath(1, n), catalog.PublishOptions{}); err != nil {
		t.Fatal(err)
	}

	children := []int{1, 2}
	var wg sync.WaitGroup
	outs := make([][]byte, len(children))
	errs := make([]error, len(children)+1)
	for i, id := range children {
		wg.Go(func() {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), envHelperDB+"="+path, envHelperID+"="+strconv.Itoa(id))
			outs[i], errs[i] = cmd.CombinedOutput()
		})
	}
	wg.Go(func() { errs[len(children)] = writeFromProcess(path, 3) })
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			out := ""
			if i < len(outs) {
				out = string(outs[i])
			}
			t.Fatalf("writer %d: %v %s", i+1, err, out)
		}
	}

	count := 0
	if err := c.WalkPaths(ctx, func(catalog.Path) error { count++; return nil }); err != nil {
		t.Fatal(err)
	}
	if want := 1 + 3*processWrites; count != want {
		t.Errorf("paths after three writers = %d, want %d", count, want)
	}
	toks, err := c.Tokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(toks) != 3 {
		t.Errorf("tokens after three writers = %+v, want 3", toks)
	}
}
