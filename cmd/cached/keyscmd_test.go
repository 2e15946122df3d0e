package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/catalog/sqlite"
	"github.com/nix-cached/cached/signing"
)

// keysCmd runs `cached keys args...` and returns its output and error;
// help goes to the output too.
func keysCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	saved := helpOutput
	helpOutput = &out
	defer func() { helpOutput = saved }()
	err := runKeys(context.Background(), args, &out)
	return out.String(), err
}

// Each subcommand's -h shows its synopsis, what it does and its own
// flags; the group's lists the subcommands and the rollover procedure.
func TestKeysHelp(t *testing.T) {
	flagRE := regexp.MustCompile(`(?m)^  --([a-z0-9-]+)`)
	for _, c := range []struct {
		sub, synopsis string
		want, not     []string
	}{
		{"status", "usage: cached keys status [--json]", []string{"data-dir", "json", "database"}, []string{"retention", "resign-rate"}},
		{"generate", "usage: cached keys generate NAME SECRET_FILE PUBLIC_FILE", nil, []string{"data-dir", "json"}},
	} {
		out, err := keysCmd(t, c.sub, "-h")
		if !errors.Is(err, flag.ErrHelp) || !strings.HasPrefix(out, c.synopsis+"\n") {
			t.Errorf("keys %s -h: %v\n%s", c.sub, err, out)
		}
		var listed []string
		for _, m := range flagRE.FindAllStringSubmatch(out, -1) {
			listed = append(listed, m[1])
		}
		for _, f := range c.want {
			if !strings.Contains(" "+strings.Join(listed, " ")+" ", " "+f+" ") {
				t.Errorf("keys %s -h does not list --%s:\n%s", c.sub, f, out)
			}
		}
		for _, f := range c.not {
			if strings.Contains(" "+strings.Join(listed, " ")+" ", " "+f+" ") {
				t.Errorf("keys %s -h lists --%s:\n%s", c.sub, f, out)
			}
		}
	}
	out, err := keysCmd(t, "-h")
	if !errors.Is(err, flag.ErrHelp) {
		t.Errorf("keys -h: %v", err)
	}
	for _, want := range []string{"cached keys status", "cached keys generate NAME SECRET_FILE PUBLIC_FILE",
		"--retired-key OLD-NAME", "--resign-rate", "/public-key"} {
		if !strings.Contains(out, want) {
			t.Errorf("keys -h lacks %q:\n%s", want, out)
		}
	}
	for _, args := range [][]string{nil, {"frobnicate"}, {"status", "extra"}, {"generate", "only-a-name"}} {
		if _, err := keysCmd(t, args...); !errors.Is(err, errUsage) {
			t.Errorf("keys %q: %v, want a usage error", args, err)
		}
	}
}

func TestKeysGenerate(t *testing.T) {
	dir := t.TempDir()
	sk, pk := filepath.Join(dir, "sk"), filepath.Join(dir, "pk")
	out, err := keysCmd(t, "generate", "cache.example-2", sk, pk)
	if err != nil {
		t.Fatal(err)
	}
	key, err := signing.LoadSecretKeyFile(sk)
	if err != nil || key.Name() != "cache.example-2" || !strings.Contains(out, key.Public().String()) {
		t.Fatalf("generated %v, %v; printed %q", key.Name(), err, out)
	}
	if _, err := keysCmd(t, "generate", "cache.example-2", sk, pk); err == nil {
		t.Error("generate over existing files succeeded")
	}
}

// keys status reads the state the servers' re-signing saved.
func TestKeysStatus(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	cat, err := sqlite.Open(ctx, filepath.Join(dir, "cached.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	out, err := keysCmd(t, "status", "--data-dir", dir)
	if err != nil || !strings.Contains(out, "no re-signing yet") {
		t.Fatalf("status of a new cache: %v\n%s", err, out)
	}
	start := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	st := catalog.ResignState{Target: "f", KeyNames: []string{"new-1", "old-1"}, Holder: "host:7",
		Cursor: "c", Checked: 25, Total: 100, Rewritten: 20, Started: start, Updated: start.Add(time.Minute)}
	if err := cat.SaveResignState(ctx, st); err != nil {
		t.Fatal(err)
	}
	out, err = keysCmd(t, "status", "--data-dir", dir)
	for _, want := range []string{"keys:     new-1 old-1", "retired:  none", "in progress: 25 of 100 paths checked (25%), 20 narinfos rewritten", "by host:7"} {
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("status in progress: %v; lacks %q:\n%s", err, want, out)
		}
	}
	st.KeyNames, st.Retired, st.Checked, st.Completed = []string{"new-1"}, []string{"old-1"}, 100, start.Add(time.Hour)
	if err := cat.SaveResignState(ctx, st); err != nil {
		t.Fatal(err)
	}
	out, err = keysCmd(t, "status", "--data-dir", dir)
	for _, want := range []string{"retired:  old-1", "complete: 100 paths checked, 20 narinfos rewritten", "took 1h0m0s"} {
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("status complete: %v; lacks %q:\n%s", err, want, out)
		}
	}
	out, err = keysCmd(t, "status", "--json", "--data-dir", dir)
	var got resignStatus
	if err != nil || json.Unmarshal([]byte(out), &got) != nil || !got.Complete || got.Checked != 100 ||
		strings.Join(got.Retired, ",") != "old-1" || got.Completed == nil || !got.Completed.Equal(st.Completed) {
		t.Errorf("status --json: %v\n%s", err, out)
	}
	if _, err := keysCmd(t, "status", "--data-dir", filepath.Join(dir, "missing")); !errors.Is(err, errNoCache) {
		t.Errorf("status of a missing cache: %v", err)
	}
}

// serve refuses a retired name that still signs, or is no key name.
func TestRetiredKeyChecked(t *testing.T) {
	key, err := signing.GenerateKey("cache-2", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		retired []string
		rate    float64
		ok      bool
	}{
		{[]string{"cache-1"}, 1, true},
		{nil, 0, true},
		{[]string{"cache-1", "cache-2"}, 1, false},
		{[]string{"bad:name"}, 1, false},
		{nil, -1, false},
	} {
		f := &resignFlags{rate: c.rate, retired: listFlag{vals: c.retired}}
		if err := f.check([]signing.SecretKey{key}); (err == nil) != c.ok || err != nil && !errors.Is(err, errUsage) {
			t.Errorf("retired %q, rate %v: %v", c.retired, c.rate, err)
		}
	}
}
