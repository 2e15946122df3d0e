package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/nix-cached/cached/catalog/sqlite"
	"github.com/nix-cached/cached/ingest"
	"github.com/nix-cached/cached/nar"
	"github.com/nix-cached/cached/narinfo"
	"github.com/nix-cached/cached/nixbase32"
	"github.com/nix-cached/cached/nixhash"
	"github.com/nix-cached/cached/signing"
	"github.com/nix-cached/cached/storage/disk"
)

// runCmd runs the command line args and returns its exit code and output.
func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// commandHelp lists every command and subcommand with the flags its -h
// must list, and some it must not.
var commandHelp = []struct {
	args       []string
	want, not  []string
	positional string // in the synopsis
}{
	{[]string{"serve"}, []string{"listen", "data-dir", "retention", "tls-cert-file", "upstream"}, []string{"dry-run"}, ""},
	{[]string{"keygen"}, nil, []string{"data-dir"}, "NAME SECRET_FILE PUBLIC_FILE"},
	{[]string{"token", "create"}, []string{"name", "scope", "data-dir"}, []string{"retention"}, ""},
	{[]string{"token", "ls"}, []string{"data-dir"}, []string{"scope", "name", "retention"}, ""},
	{[]string{"token", "rm"}, []string{"data-dir"}, []string{"scope", "name"}, "NAME"},
	{[]string{"verify"}, []string{"contents", "data-dir"}, []string{"retention"}, ""},
	{[]string{"gc"}, []string{"dry-run", "retention", "mirror-retention", "max-size"}, []string{"listen"}, ""},
	{[]string{"pin", "add"}, []string{"keep", "expires"}, []string{"retention"}, "NAME STOREPATH"},
	{[]string{"pin", "rm"}, []string{"data-dir"}, []string{"keep", "expires"}, "NAME"},
	{[]string{"pin", "ls"}, []string{"data-dir"}, []string{"keep"}, ""},
	{[]string{"path", "rm"}, []string{"force", "dry-run"}, []string{"retention", "max-size"}, "STOREPATH"},
	{[]string{"stats"}, []string{"json"}, []string{"retention"}, ""},
	{[]string{"ls"}, []string{"limit", "data-dir"}, []string{"retention"}, "PATTERN"},
	{[]string{"info"}, []string{"json", "data-dir"}, []string{"retention"}, "STOREPATH"},
	{[]string{"keys", "status"}, []string{"json", "data-dir"}, []string{"retention"}, ""},
	{[]string{"keys", "generate"}, nil, []string{"retention"}, "NAME SECRET_FILE PUBLIC_FILE"},
	{[]string{"use"}, []string{"token", "public-key", "post-build-hook"}, []string{"data-dir"}, "URL"},
	{[]string{"push"}, []string{"to", "pin"}, []string{"data-dir"}, "PATH"},
	{[]string{"collect"}, []string{"to", "dry-run"}, []string{"data-dir"}, ""},
	{[]string{"post-build-hook"}, []string{"to", "timeout"}, []string{"data-dir"}, ""},
}

var helpFlag = regexp.MustCompile(`(?m)^  --([a-z0-9-]+)`)

// Every command's -h exits 0 and shows its synopsis, its positional
// arguments, its own flags and no other's; every flag it lists is known
// as a setting (so its CACHED_* variable draws no warning); defaults are
// written as they are typed.
func TestCommandHelp(t *testing.T) {
	known := settingNames()
	for _, c := range commandHelp {
		name := strings.Join(c.args, " ")
		t.Run(name, func(t *testing.T) {
			code, out, errOut := runCmd(t, append(slices.Clone(c.args), "-h")...)
			if code != 0 || errOut != "" {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			if !strings.HasPrefix(out, "usage: cached "+name) || !strings.Contains(strings.SplitN(out, "\n\n", 2)[0], c.positional) {
				t.Errorf("no synopsis with %q:\n%s", c.positional, out)
			}
			var listed []string
			for _, m := range helpFlag.FindAllStringSubmatch(out, -1) {
				listed = append(listed, m[1])
				if !known[m[1]] {
					t.Errorf("--%s is not in settingNames: CACHED_%s would be warned about", m[1], strings.ToUpper(m[1]))
				}
			}
			for _, f := range c.want {
				if !slices.Contains(listed, f) {
					t.Errorf("--%s is not listed:\n%s", f, out)
				}
			}
			for _, f := range c.not {
				if slices.Contains(listed, f) {
					t.Errorf("--%s is listed but does not apply:\n%s", f, out)
				}
			}
			if strings.Contains(out, "(default 33554432)") || strings.Contains(out, "8760h") {
				t.Errorf("a default in raw form:\n%s", out)
			}
		})
	}
	_, out, _ := runCmd(t, "serve", "-h")
	for _, want := range []string{"--narinfo-cache MEMORY", "(default 128MiB)", "(default 64GiB)", "--upstream-miss-ttl DURATION", "(default 10m)", "--retention DURATION", "(default 365d)"} {
		if !strings.Contains(out, want) {
			t.Errorf("serve -h lacks %q", want)
		}
	}
}

// Command groups: help exits 0; no or an unknown subcommand is one usage
// line, exit 2.
func TestCommandGroups(t *testing.T) {
	for _, g := range []string{"token", "pin", "path", "keys"} {
		for _, h := range []string{"-h", "--help", "help"} {
			if code, out, _ := runCmd(t, g, h); code != 0 || !strings.Contains(out, "cached "+g+" ") {
				t.Errorf("cached %s %s: exit %d\n%s", g, h, code, out)
			}
		}
		for _, args := range [][]string{{g}, {g, "frobnicate"}} {
			code, out, errOut := runCmd(t, args...)
			if code != 2 || out != "" || strings.Count(errOut, "\n") != 1 || strings.Contains(errOut, "usage: usage") {
				t.Errorf("cached %s: exit %d, stdout %q, stderr %q; want exit 2 and one line", strings.Join(args, " "), code, out, errOut)
			}
		}
	}
	if code, out, _ := runCmd(t, "help", "gc"); code != 0 || !strings.HasPrefix(out, "usage: cached gc") {
		t.Errorf("cached help gc: exit %d\n%s", code, out)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCmd(t, "version")
	if code != 0 || !strings.HasPrefix(out, "cached ") || !strings.Contains(out, "go1.") {
		t.Errorf("cached version: exit %d\n%s", code, out)
	}
}

// A value that does not parse names the value and what was wanted,
// whatever its source; a misspelt variable draws a warning with the
// closest setting.
func TestSettingErrors(t *testing.T) {
	t.Setenv("CACHED_PRIORITY", "abc")
	code, _, errOut := runCmd(t, "serve")
	if code != 2 || !strings.Contains(errOut, `CACHED_PRIORITY="abc": want a whole number`) {
		t.Errorf("CACHED_PRIORITY=abc: exit %d, %s", code, errOut)
	}
	os.Unsetenv("CACHED_PRIORITY")
	code, _, errOut = runCmd(t, "serve", "--priority", "x1")
	if code != 2 || !strings.Contains(errOut, `--priority "x1": want a whole number`) {
		t.Errorf("--priority x1: exit %d, %s", code, errOut)
	}
	conf := filepath.Join(t.TempDir(), "cached.conf")
	if err := os.WriteFile(conf, []byte("want-mass-query = maybe\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCmd(t, "serve", "--config", conf)
	if code != 2 || !strings.Contains(errOut, `want-mass-query = "maybe": want true or false`) {
		t.Errorf("config want-mass-query = maybe: exit %d, %s", code, errOut)
	}

	t.Setenv("CACHED_PRIORTY", "10")
	t.Setenv("CACHED_REQUIRE_NIX", "1") // the test suite's own
	dir := newCacheDir(t)
	code, _, errOut = runCmd(t, "stats", "--data-dir", dir)
	if code != 0 || !strings.Contains(errOut, "CACHED_PRIORTY is not a setting of any cached command, and is ignored; did you mean CACHED_PRIORITY?") ||
		strings.Contains(errOut, "CACHED_REQUIRE_NIX") {
		t.Errorf("a misspelt variable: exit %d, stderr:\n%s", code, errOut)
	}

	if code, _, errOut := runCmd(t, "gc", "--data-dir", dir, "--retention", "0"); code != 2 || !strings.Contains(errOut, "--retention 0: want a positive duration") {
		t.Errorf("--retention 0: exit %d, %s", code, errOut)
	}
}

// newCacheDir makes the data directory of an empty cache.
func newCacheDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cat, err := sqlite.Open(context.Background(), filepath.Join(dir, "cached.db"))
	if err != nil {
		t.Fatal(err)
	}
	cat.Close()
	return dir
}

func TestTokenCreateTwice(t *testing.T) {
	dir := newCacheDir(t)
	if code, out, errOut := runCmd(t, "token", "create", "--name", "ci", "--data-dir", dir); code != 0 || len(strings.TrimSpace(out)) < 20 {
		t.Fatalf("token create: exit %d, %q %q", code, out, errOut)
	}
	code, _, errOut := runCmd(t, "token", "create", "--name", "ci", "--data-dir", dir)
	if code != 1 || !strings.Contains(errOut, `a token named "ci" exists already`) {
		t.Errorf("token create again: exit %d, %s", code, errOut)
	}
	if code, _, errOut := runCmd(t, "token", "rm", "nope", "--data-dir", dir); code != 1 || !strings.Contains(errOut, `no token named "nope"`) {
		t.Errorf("token rm nope: exit %d, %s", code, errOut)
	}
}

// path rm --dry-run says what would go, pins included, and removes
// nothing; path rm --force then does it and says what it unpinned.
func TestPathRemoveDryRun(t *testing.T) {
	dir, lib, app := newCacheWithApp(t, "lib")
	if code, _, errOut := runCmd(t, "pin", "add", "release", app, "--data-dir", dir); code != 0 {
		t.Fatalf("pin add: %d %s", code, errOut)
	}

	if code, _, errOut := runCmd(t, "path", "rm", lib, "--dry-run", "--data-dir", dir); code != 1 || !strings.Contains(errOut, "is referenced by "+app) {
		t.Errorf("dry run of a referenced path: exit %d, %s", code, errOut)
	}
	code, out, errOut := runCmd(t, "path", "rm", lib, "--force", "--dry-run", "--data-dir", dir)
	if code != 0 || !regexp.MustCompile(`(?s)would remove\s+`+app+`.*would remove\s+`+lib+`.*would unpin\trelease\t`+app).MatchString(out) {
		t.Errorf("path rm --force --dry-run: exit %d\n%s%s", code, out, errOut)
	}
	if _, out, _ := runCmd(t, "pin", "ls", "--data-dir", dir); !strings.Contains(out, "release") {
		t.Errorf("the dry run removed the pin:\n%s", out)
	}
	code, out, errOut = runCmd(t, "path", "rm", lib, "--force", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "unpinned\trelease\t"+app) || len(regexp.MustCompile(`(?m)^removed `).FindAllString(out, -1)) != 2 {
		t.Errorf("path rm --force: exit %d\n%s%s", code, out, errOut)
	}
	if _, out, _ := runCmd(t, "pin", "ls", "--data-dir", dir); strings.Contains(out, "release") {
		t.Errorf("the pin survived:\n%s", out)
	}
}

// newCacheWithApp makes a cache holding two paths, an app and the library
// it references (named lib), pushed through the ingester; it returns the
// data directory and their store paths.
func newCacheWithApp(t *testing.T, lib string) (dir, libPath, appPath string) {
	t.Helper()
	dir = newCacheDir(t)
	ctx := context.Background()
	cat, err := sqlite.Open(ctx, filepath.Join(dir, "cached.db"))
	if err != nil {
		t.Fatal(err)
	}
	store, err := disk.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := signing.GenerateKey("test-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	ing, err := ingest.New(store, cat, ingest.Options{Keys: []signing.SecretKey{key}})
	if err != nil {
		t.Fatal(err)
	}
	libBase := "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-" + lib
	libPath = publishTestPath(t, ing, libBase)
	appPath = publishTestPath(t, ing, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-app", libBase)
	cat.Close()
	store.Close()
	return dir, libPath, appPath
}

// publishTestPath pushes a one-file path through the ingester and returns
// its store path.
func publishTestPath(t *testing.T, ing *ingest.Ingester, base string, refs ...string) string {
	t.Helper()
	var plain bytes.Buffer
	w := nar.NewWriter(&plain)
	text := "contents of " + base
	if err := w.WriteHeader(&nar.Header{Path: "/", Type: nar.TypeRegular, Size: int64(len(text))}); err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(w, text)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(plain.Bytes())
	name := nixbase32.EncodeToString(sum[:]) + ".nar"
	ctx := context.Background()
	if _, err := ing.NAR(ctx, name, bytes.NewReader(plain.Bytes()), int64(plain.Len())); err != nil {
		t.Fatal(err)
	}
	ni := narinfo.NarInfo{StorePath: "/nix/store/" + base, URL: "nar/" + name, Compression: "none",
		FileHash: nixhash.NewSHA256(sum), FileSize: uint64(plain.Len()),
		NarHash: nixhash.NewSHA256(sum), NarSize: uint64(plain.Len()), References: refs}
	if _, err := ing.NarInfo(ctx, base[:32], []byte(ni.String())); err != nil {
		t.Fatal(err)
	}
	return "/nix/store/" + base
}

// cached ls finds paths by name; cached info shows one.
func TestLsInfo(t *testing.T) {
	dir, lib, app := newCacheWithApp(t, "libhello")

	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"ls"}, []string{app, lib}},
		{[]string{"ls", "HELLO"}, []string{lib}},
		{[]string{"ls", "--limit", "1"}, []string{app}},
		{[]string{"ls", "nothing-by-that-name"}, nil},
	} {
		code, out, errOut := runCmd(t, append(c.args, "--data-dir", dir)...)
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if f := strings.Fields(l); len(f) > 0 {
				got = append(got, f[0])
			}
		}
		if code != 0 || !slices.Equal(got, c.want) {
			t.Errorf("cached %s: exit %d, %v, want %v\n%s", strings.Join(c.args, " "), code, got, c.want, errOut)
		}
	}

	code, out, errOut := runCmd(t, "info", app, "--data-dir", dir)
	for _, want := range []string{"path        " + app, "references  " + lib, "closure     2 paths", "signatures  test-1:", "mirrored    no", "files:", ".  file"} {
		if !strings.Contains(out, want) {
			t.Errorf("cached info lacks %q: exit %d\n%s%s", want, code, out, errOut)
		}
	}
	if _, out, _ := runCmd(t, "info", lib, "--data-dir", dir); !strings.Contains(out, "referrers   "+app) {
		t.Errorf("cached info of the library lacks its referrer:\n%s", out)
	}
	if code, out, _ := runCmd(t, "info", "--json", app, "--data-dir", dir); code != 0 || !strings.Contains(out, `"StorePath": "`+app+`"`) {
		t.Errorf("cached info --json: exit %d\n%s", code, out)
	}
	if code, _, errOut := runCmd(t, "info", "/nix/store/cccccccccccccccccccccccccccccccc-x", "--data-dir", dir); code != 1 || !strings.Contains(errOut, "is not in the cache") {
		t.Errorf("cached info of a path not in the cache: exit %d, %s", code, errOut)
	}
}
