package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nix-cached/cached/nar"
	"github.com/nix-cached/cached/narinfo"
	"github.com/nix-cached/cached/nixbase32"
	"github.com/nix-cached/cached/nixhash"
)

// onlyServe is what every refusal of a missing cache says.
const onlyServe = "only `cached serve` creates one"

// TestMaintenanceNeedsExistingCache runs every command that opens the
// cache's data where there is none: from a directory without
// ./cached-data, on an empty --data-dir, and on a --database file that is
// not there. Each must exit 1 with one line that names the absolute path
// and says that only `cached serve` creates a cache, and create nothing.
func TestMaintenanceNeedsExistingCache(t *testing.T) {
	path := "/nix/store/" + strings.Repeat("0", 32) + "-x"
	commands := [][]string{
		{"token", "create"}, {"token", "create", "--name", "ci", "--scope", "read"}, {"token", "ls"}, {"token", "rm", "ci"},
		{"verify"}, {"verify", "--contents"}, {"gc"}, {"gc", "--dry-run"},
		{"pin", "add", "p", path}, {"pin", "rm", "p"}, {"pin", "ls"},
		{"path", "rm", path}, {"path", "rm", path, "--force"}, {"stats"}, {"stats", "--json"},
	}
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o750); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "no-such.db")
	setups := []struct {
		name  string
		flags []string
		want  string // in the refusal
	}{
		{"no ./cached-data", nil, "data directory " + filepath.Join(dir, "cached-data") + " does not exist; " + onlyServe},
		{"empty --data-dir", []string{"--data-dir", empty}, "data directory " + empty + " holds no cache (no cached.db); " + onlyServe},
		{"missing --database file", []string{"--database", "sqlite://" + db, "--storage", "file://" + filepath.Join(dir, "blobs")},
			"catalog " + db + " does not exist; " + onlyServe},
	}
	for _, s := range setups {
		t.Run(s.name, func(t *testing.T) {
			for _, c := range commands {
				args := append(append([]string{}, c...), s.flags...)
				out, errOut, err := runCached(dir, args...)
				var exit *exec.ExitError
				if !errors.As(err, &exit) || exit.ExitCode() != 1 {
					t.Errorf("cached %s: %v, want exit status 1\n%s%s", strings.Join(args, " "), err, out, errOut)
					continue
				}
				line := strings.TrimSuffix(errOut, "\n")
				if out != "" || strings.Contains(line, "\n") || !strings.Contains(line, s.want) {
					t.Errorf("cached %s: stdout %q, stderr %q; want one line saying %q", strings.Join(args, " "), out, errOut, s.want)
				}
				if s.flags == nil && !strings.Contains(line, "pass --data-dir") {
					t.Errorf("cached %s: %q does not say to pass --data-dir", strings.Join(args, " "), line)
				}
			}
			for _, d := range []string{dir, empty} {
				ents, err := os.ReadDir(d)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range ents {
					if d != dir || e.Name() != "empty" {
						t.Errorf("a refused command created %s", filepath.Join(d, e.Name()))
					}
				}
			}
		})
	}
}

// TestDefaultKeyNamesDistinct starts two caches on one host: the keys
// they generate have different names (a client trusting both would
// otherwise reject one cache's paths), readable ones after the host, and
// a cache keeps its name across restarts.
func TestDefaultKeyNamesDistinct(t *testing.T) {
	first, second := startCache(t, blobBackend{name: "disk"}), startCache(t, blobBackend{name: "disk"})
	name := func(pub string) string { return pub[:strings.IndexByte(pub, ':')] }
	host, _ := os.Hostname()
	valid := regexp.MustCompile(`^` + regexp.QuoteMeta(host) + `-?[0-9a-df-np-sv-z]{6}-cached-1$`)
	for _, c := range []*cache{first, second} {
		if !valid.MatchString(name(c.Pub)) {
			t.Errorf("generated key name %q, want %s", name(c.Pub), valid)
		}
		if !strings.Contains(c.Stdout.String(), "generated signing key") {
			t.Errorf("no key generated on first start:\n%s", c.Stdout)
		}
	}
	if name(first.Pub) == name(second.Pub) {
		t.Fatalf("two caches generated keys of the same name: %s and %s", first.Pub, second.Pub)
	}
	waitReady(t, first.proc) // then it handles SIGTERM
	first.stop()
	again := start(t, first.Dir, nil, "--listen", "127.0.0.1:0", "--data-dir", first.Data,
		"--push-token-file", filepath.Join(first.Dir, "tokens"))
	if out := again.Stdout.String(); !strings.Contains(out, "public key: "+first.Pub+"\n") || strings.Contains(out, "generated") {
		t.Errorf("after a restart, not the same key (%s):\n%s", first.Pub, out)
	}
}

// TestMissingKeyRefused removes the generated key files of caches that are
// not new: serve must refuse to start, say why and what to do, and make no
// key. With the files restored, the cache starts with its old key.
func TestMissingKeyRefused(t *testing.T) {
	c := startCache(t, blobBackend{name: "disk"})
	published := publishPath(t, c)
	c.stop()
	sk := filepath.Join(c.Data, "signing-key")
	pk := sk + ".pub"
	secret, public := readFile(t, sk), readFile(t, pk)
	serve := []string{"--data-dir", c.Data, "--push-token-file", filepath.Join(c.Dir, "tokens")}

	remove(t, sk)
	refused := serveRefused(t, c.Dir, serve...)
	for _, want := range []string{sk + " is missing", "1 published path", "restore", "--signing-key-file"} {
		if !strings.Contains(refused, want) {
			t.Errorf("refusal without %s does not say %q:\n%s", sk, want, refused)
		}
	}
	remove(t, pk)
	refused = serveRefused(t, c.Dir, serve...)
	for _, want := range []string{sk + " and " + pk + " are missing", "1 published path", "restore", "--signing-key-file"} {
		if !strings.Contains(refused, want) {
			t.Errorf("refusal without both key files does not say %q:\n%s", want, refused)
		}
	}
	for _, p := range []string{sk, pk} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a refused start made %s: %v", p, err)
		}
	}

	writeFile(t, sk, secret)
	if err := os.WriteFile(pk, []byte(public), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := start(t, c.Dir, nil, append([]string{"--listen", "127.0.0.1:0"}, serve...)...)
	if !strings.Contains(srv.Stdout.String(), "public key: "+c.Pub+"\n") {
		t.Errorf("with the key files restored, not the old key %s:\n%s", c.Pub, srv.Stdout)
	}
	// (The answer also means that the server handles SIGTERM by now.)
	keyName := c.Pub[:strings.IndexByte(c.Pub, ':')]
	if code, body := srv.get("/"+strings.TrimPrefix(published, "/nix/store/")[:32]+".narinfo", ""); code != 200 || !strings.Contains(body, "Sig: "+keyName+":") {
		t.Errorf("the published path after the restore: %d\n%s", code, body)
	}
	srv.stop()

	// A cache that published nothing but was started before: its clients
	// may trust its key already.
	unused := startCache(t, blobBackend{name: "disk"})
	waitReady(t, unused.proc)
	unused.stop()
	remove(t, filepath.Join(unused.Data, "signing-key"))
	remove(t, filepath.Join(unused.Data, "signing-key.pub"))
	refused = serveRefused(t, unused.Dir, "--data-dir", unused.Data)
	if !strings.Contains(refused, "not new") || !strings.Contains(refused, "are missing") {
		t.Errorf("refusal on a started cache without key files:\n%s", refused)
	}
}

// TestNewDataDirGeneratesKey starts serve on an empty data directory (as a
// fresh volume is) and on one that is not there: both are new caches, so
// each gets a key; the maintenance commands then work on them.
func TestNewDataDirGeneratesKey(t *testing.T) {
	dir := t.TempDir()
	volume := filepath.Join(dir, "volume")
	if err := os.Mkdir(volume, 0o750); err != nil {
		t.Fatal(err)
	}
	for _, data := range []string{volume, filepath.Join(dir, "new", "data")} {
		srv := start(t, dir, nil, "--listen", "127.0.0.1:0", "--data-dir", data)
		out := srv.Stdout.String()
		m := publicKeyLine.FindStringSubmatch(out)
		if m == nil || !strings.Contains(out, "generated signing key") || !strings.Contains(out, "push token") {
			t.Fatalf("serve on a new data directory %s made no key and token:\n%s", data, out)
		}
		if got := readFile(t, filepath.Join(data, "signing-key.pub")); got != m[1] {
			t.Errorf("%s/signing-key.pub holds %q, printed %q", data, got, m[1])
		}
		if out := cachedCmd(t, dir, "verify", "--data-dir", data); !strings.Contains(out, "verified 0 paths, 0 NARs, 0 bytes: OK") {
			t.Errorf("verify on a new cache:\n%s", out)
		}
		cachedCmd(t, dir, "stats", "--data-dir", data)
		cachedCmd(t, dir, "token", "create", "--name", "ci", "--data-dir", data)
		waitReady(t, srv)
		srv.stop()
	}
}

// publishPath pushes a one-file path with plain HTTP PUTs, as nix copy
// does with compression=none, and returns its store path.
func publishPath(t *testing.T, c *cache) string {
	t.Helper()
	contents := "datadir " + time.Now().String()
	var plain bytes.Buffer
	w := nar.NewWriter(&plain)
	if err := w.WriteHeader(&nar.Header{Path: "/", Type: nar.TypeRegular, Size: int64(len(contents))}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(w, contents); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(plain.Bytes())
	file := nixbase32.EncodeToString(sum[:]) + ".nar"
	if code, body := c.do("PUT", "/nar/"+file, c.Token, plain.Bytes()); code/100 != 2 {
		t.Fatalf("PUT NAR: %d %s", code, body)
	}
	hash := make([]byte, 20)
	if _, err := rand.Read(hash); err != nil {
		t.Fatal(err)
	}
	base := nixbase32.EncodeToString(hash) + "-datadir"
	ni := narinfo.NarInfo{
		StorePath: "/nix/store/" + base, URL: "nar/" + file, Compression: "none",
		FileHash: nixhash.NewSHA256(sum), FileSize: uint64(plain.Len()),
		NarHash: nixhash.NewSHA256(sum), NarSize: uint64(plain.Len()),
	}
	if code, body := c.do("PUT", "/"+base[:32]+".narinfo", c.Token, []byte(ni.String())); code/100 != 2 {
		t.Fatalf("PUT narinfo: %d %s", code, body)
	}
	if code, body := c.get("/"+base[:32]+".narinfo", ""); code != 200 {
		t.Fatalf("the pushed path is not published: %d %s", code, body)
	}
	return ni.StorePath
}

// serveRefused runs `cached serve args...` in dir on a free port and
// returns its stderr; it fails the test unless serve exits with status 1
// before serving.
func serveRefused(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
	cmd.Dir = dir
	var errb bytes.Buffer
	cmd.Stderr = &errb
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if servingLine.MatchString(sc.Text()) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("cached serve %s started:\n%s%s", strings.Join(args, " "), out.String(), errb.String())
		}
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("cached serve %s: %v, want exit status 1\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return errb.String()
}

func remove(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}
