package disk

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nix-cached/cached/storage"
)

// crashRootEnv tells a child test process to write to the store in that
// directory until it is killed.
const crashRootEnv = "CACHED_DISK_CRASH_ROOT"

// version returns the contents of version v of an object: v as 8 bytes, then
// a length and a fill byte that depend on v.
func version(v uint64) []byte {
	b := bytes.Repeat([]byte{byte(v)}, 8+int(v*7919%200_000))
	binary.BigEndian.PutUint64(b, v)
	return b
}

// wholeVersion returns the version b is, or false if b is not exactly one.
func wholeVersion(b []byte) (uint64, bool) {
	if len(b) < 8 {
		return 0, false
	}
	v := binary.BigEndian.Uint64(b)
	return v, bytes.Equal(b, version(v))
}

// TestKillDuringUploads kills (SIGKILL) a process that keeps replacing one
// object and creating others, at several moments, and checks after each
// restart that every visible object is one whole version.
func TestKillDuringUploads(t *testing.T) {
	if root := os.Getenv(crashRootEnv); root != "" {
		runCrashChild(t, root)
		return
	}
	if testing.Short() {
		t.Skip("spawns processes")
	}
	root := t.TempDir()
	var reported []uint64 // versions the children reported committed
	for round := range 12 {
		after := 1 + round*5%17
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillDuringUploads$")
		cmd.Env = append(os.Environ(), crashRootEnv+"="+root)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		for seen := 0; seen < after && sc.Scan(); {
			v, err := strconv.ParseUint(strings.TrimSpace(sc.Text()), 10, 64)
			if err != nil {
				continue // not a report: test framework output
			}
			reported, seen = append(reported, v), seen+1
		}
		// Land the SIGKILL at varied points of the next uploads. The delay
		// only spreads the kill points; nothing depends on it.
		time.Sleep(time.Duration(round%4) * 700 * time.Microsecond)
		cmd.Process.Kill()
		go io.Copy(io.Discard, out)
		cmd.Wait() //nolint:errcheck // killed on purpose

		s := newStore(t, root)
		checkCrashed(t, s, round, reported)
		s.Close()
	}
}

// checkCrashed checks the store a killed child left behind.
func checkCrashed(t *testing.T, s *Store, round int, reported []uint64) {
	t.Helper()
	last := reported[len(reported)-1]
	r, err := s.Open(t.Context(), "nar/victim")
	if err != nil {
		t.Fatalf("round %d: victim: %v", round, err)
	}
	b, err := io.ReadAll(r)
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := wholeVersion(b); !ok || v < last {
		t.Errorf("round %d: victim holds %d bytes (version %d, whole %v), want a whole version ≥ %d", round, len(b), v, ok, last)
	}
	listed := make(map[string]bool)
	err = s.List(t.Context(), "new/", func(info storage.Info) error {
		listed[info.Key] = true
		r, err := s.Open(t.Context(), info.Key)
		if err != nil {
			return err
		}
		defer r.Close()
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		if v, ok := wholeVersion(b); !ok || info.Key != "new/"+strconv.FormatUint(v, 10) {
			t.Errorf("round %d: %s holds %d bytes, not its whole version", round, info.Key, len(b))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range reported {
		if key := "new/" + strconv.FormatUint(v, 10); !listed[key] {
			t.Errorf("round %d: %s was committed but is gone", round, key)
		}
	}
}

// runCrashChild is the child process: it writes until killed.
func runCrashChild(t *testing.T, root string) {
	s, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	v := uint64(1)
	if r, err := s.Open(t.Context(), "nar/victim"); err == nil {
		b, _ := io.ReadAll(r)
		r.Close()
		if old, ok := wholeVersion(b); ok {
			v = old + 1
		}
	}
	for limit := v + 10_000; v < limit; v++ { // bounded, in case the parent dies
		for _, key := range []string{"nar/victim", "new/" + strconv.FormatUint(v, 10)} {
			if _, err := storage.Put(t.Context(), s, key, bytes.NewReader(version(v))); err != nil {
				t.Fatal(err)
			}
		}
		fmt.Println(v)
	}
}
