package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nix-cached/cached/internal/nixtest"
	"github.com/nix-cached/cached/nixbase32"
)

// runCached runs a cached subcommand and returns its output and error
// without failing the test.
func runCached(dir string, args ...string) (string, string, error) {
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// verifyClean runs `cached verify` (with --contents if asked) on data and
// requires it to pass.
func verifyClean(t *testing.T, dir, data string, contents bool) {
	t.Helper()
	args := []string{"verify", "--data-dir", data}
	if contents {
		args = append(args, "--contents")
	}
	out, errOut, err := runCached(dir, args...)
	if err != nil || !regexp.MustCompile(`(?m)^verified \d+ paths, \d+ NARs, \d+ bytes: OK$`).MatchString(out) {
		t.Fatalf("cached %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
}

// pushSetup is a server configuration shared by the runs of a test.
type pushSetup struct {
	dir, data, pub, token string
	args                  []string
}

func newPushSetup(t *testing.T) *pushSetup {
	t.Helper()
	s := &pushSetup{dir: t.TempDir()}
	s.data = filepath.Join(s.dir, "data")
	sk, pk := filepath.Join(s.dir, "sk"), filepath.Join(s.dir, "pk")
	cachedCmd(t, s.dir, "keygen", "e2e-crash-1", sk, pk)
	s.pub = readFile(t, pk)
	s.token = "e2e-crash-token-" + nixtest.Nonce()
	tokens := filepath.Join(s.dir, "push-tokens")
	writeFile(t, tokens, s.token+"\n")
	s.args = []string{"--listen", "127.0.0.1:0", "--data-dir", s.data, "--signing-key-file", sk, "--push-token-file", tokens}
	return s
}

// pusher returns a fresh client of nix (empty narinfo cache) holding the push
// token. It gives up on the first failed upload: Nix would otherwise retry
// for seconds against a server that is gone.
func (s *pushSetup) pusher(t *testing.T, nix *nixtest.Nix) *nixtest.Client {
	return nix.New(t, "netrc-file = "+netrc(t, s.token), "download-attempts = 1")
}

// TestVerifyCommand pushes a closure with Nix, checks that `cached verify`
// passes while the server runs, then deletes one NAR file and checks that
// both verify modes name the path that lost it.
func TestVerifyCommand(t *testing.T) {
	nixtest.Each(t, testVerifyCommand)
}

func testVerifyCommand(t *testing.T, nix *nixtest.Nix) {
	builder := nix.New(t)
	s := newPushSetup(t)
	srv := start(t, s.dir, nil, s.args...)
	top := builder.Build(closureExpr(nixtest.Nonce()))[0]
	closure := builder.Closure(top)
	s.pusher(t, nix).Run("nix", "copy", "--to", srv.URL, top)
	verifyClean(t, s.dir, s.data, false)
	verifyClean(t, s.dir, s.data, true)
	// A mistyped data directory is an error, not an empty cache.
	missing := filepath.Join(s.dir, "no-such-dir")
	if out, _, err := runCached(s.dir, "verify", "--data-dir", missing); err == nil {
		t.Errorf("cached verify on a missing data directory passed:\n%s", out)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Errorf("cached verify created %s", missing)
	}

	// The big path's NAR file, found through its narinfo.
	var victim, file string
	for _, p := range closure {
		if strings.Contains(p, "-big-") {
			victim = p
			_, ni := srv.get("/"+filepath.Base(p)[:32]+".narinfo", "")
			if m := regexp.MustCompile(`(?m)^URL: nar/(\S+)$`).FindStringSubmatch(ni); m != nil {
				file = m[1]
			}
		}
	}
	files, _ := filepath.Glob(filepath.Join(s.data, "blobs", "nar", "*", file))
	if victim == "" || file == "" || len(files) != 1 {
		t.Fatalf("cannot find the NAR file of the big path (%q, %q): %v", victim, file, files)
	}
	if err := os.Remove(files[0]); err != nil {
		t.Fatal(err)
	}
	for _, mode := range [][]string{nil, {"--contents"}} {
		args := append([]string{"verify", "--data-dir", s.data}, mode...)
		out, errOut, err := runCached(s.dir, args...)
		if err == nil {
			t.Errorf("cached %s passed after a NAR file was deleted:\n%s", strings.Join(args, " "), out)
		}
		if !strings.Contains(out, victim+": NAR file nar/"+file+" is missing\n") ||
			!strings.Contains(out, ": 1 problems\n") || !strings.Contains(errOut, "inconsistent") {
			t.Errorf("cached %s does not name %s:\n%s%s", strings.Join(args, " "), victim, out, errOut)
		}
	}
	srv.stop()
}

// crashClosures is rounds closures of six paths each, 24 MB of random data
// in three files, so that a push takes a few hundred milliseconds.
func crashClosures(nonce string, rounds int) string {
	d := nixtest.Derivation
	var b strings.Builder
	b.WriteString("[\n")
	for i := range rounds {
		n := nonce + "-" + strconv.Itoa(i)
		b.WriteString(`(let
  small = ` + d("small-"+n, `echo `+n+` > $out`) + `;
  a = ` + d("a-"+n, `head -c 8000000 /dev/urandom > $out`) + `;
  b = ` + d("b-"+n, `head -c 8000000 /dev/urandom > $out`) + `;
  c = ` + d("c-"+n, `mkdir $out; head -c 8000000 /dev/urandom > $out/data; echo ${a} > $out/ref`) + `;
  f = ` + d("f-"+n, `mkdir $out; echo ${small} ${b} > $out/refs`) + `;
in ` + d("top-"+n, `mkdir $out; echo ${c} ${f} > $out/refs; ln -s ${c}/data $out/data`) + ")\n")
	}
	b.WriteString("]")
	return b.String()
}

// TestKillDuringPush kills the server (SIGKILL) at spread-out moments of a
// push by Nix, several times on the same data directory, and requires
// `cached verify --contents` to find the cache consistent after each kill.
// Then a complete push of everything and a substitution of it back must
// work.
func TestKillDuringPush(t *testing.T) {
	if testing.Short() {
		t.Skip("pushes and kills the server repeatedly")
	}
	nixtest.Each(t, testKillDuringPush)
}

func testKillDuringPush(t *testing.T, nix *nixtest.Nix) {
	const rounds = 8
	builder := nix.New(t)
	tops := builder.Build(crashClosures(nixtest.Nonce(), rounds+1))
	if len(tops) != rounds+1 {
		t.Fatalf("built %d closures, want %d", len(tops), rounds+1)
	}
	// 200 MB of random store paths are not worth keeping after the test.
	t.Cleanup(func() {
		if _, stderr, err := builder.Try("nix-store", append([]string{"--delete"}, builder.Closure(tops...)...)...); err != nil {
			t.Logf("deleting the test's store paths: %v\n%s", err, stderr)
		}
	})
	s := newPushSetup(t)

	// One undisturbed push measures how long a push takes.
	srv := start(t, s.dir, nil, s.args...)
	began := time.Now()
	s.pusher(t, nix).Run("nix", "copy", "--to", srv.URL+"?compression=none", tops[0])
	took := time.Since(began)
	srv.stop()
	t.Logf("a push of %d paths took %v", len(builder.Closure(tops[0])), took)

	for round := 1; round <= rounds; round++ {
		srv := start(t, s.dir, nil, s.args...)
		c := s.pusher(t, nix)
		push := nix.Command(c.Env, "nix", "copy", "--to", srv.URL+"?compression=none", tops[round])
		var pushOut bytes.Buffer
		push.Stdout, push.Stderr = &pushOut, &pushOut
		if err := push.Start(); err != nil {
			t.Fatal(err)
		}
		// Each round kills in its own slice of the push's duration (and
		// a little after, as pushes vary), so the kills cover the whole
		// push; the delay only spreads them.
		slice := took * 5 / 4 / rounds
		delay := time.Duration(round-1)*slice + rand.N(slice)
		time.Sleep(delay)
		if err := srv.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-srv.done
		pushErr := push.Wait()
		var nars, narinfos int
		for _, l := range srv.requests("PUT") {
			switch {
			case !strings.Contains(l, " status=204 "):
			case strings.Contains(l, " path=/nar/"):
				nars++
			case strings.Contains(l, ".narinfo "):
				narinfos++
			}
		}
		t.Logf("round %d: killed after %v, when %d NARs and %d narinfos were stored; nix copy: %v",
			round, delay.Round(time.Millisecond), nars, narinfos, pushErr)
		verifyClean(t, s.dir, s.data, true)
		checkBlobFiles(t, s.data)
		if t.Failed() {
			t.Fatalf("round %d: nix copy output:\n%s", round, pushOut.String())
		}
	}

	// A complete push over what the kills left, then everything back by
	// substitution.
	srv = start(t, s.dir, nil, s.args...)
	s.pusher(t, nix).Run("nix", append([]string{"copy", "--to", srv.URL + "?compression=zstd"}, tops...)...)
	verifyClean(t, s.dir, s.data, true)
	want := make([]map[string]string, len(tops))
	var all []string
	for i, top := range tops {
		closure := builder.Closure(top)
		want[i] = hashes(t, builder, closure)
		all = append(all, closure...)
	}
	deleteLocally(t, builder, all)
	for i, top := range tops {
		substitute(t, nix, srv.URL, s.pub, top, want[i])
	}
	srv.stop()
}

// checkBlobFiles checks that no file at a final key is a partial upload:
// every NAR file hashes to its name, and every listing is whole JSON.
func checkBlobFiles(t *testing.T, data string) {
	t.Helper()
	nars, _ := filepath.Glob(filepath.Join(data, "blobs", "nar", "*", "*"))
	for _, f := range nars {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		if name := filepath.Base(f); !strings.HasPrefix(name, nixbase32.EncodeToString(sum[:])+".nar") {
			t.Errorf("NAR file %s (%d bytes) does not hash to its name", f, len(b))
		}
	}
	listings, _ := filepath.Glob(filepath.Join(data, "blobs", "ls", "*", "*"))
	for _, f := range listings {
		var ls struct {
			Version int             `json:"version"`
			Root    json.RawMessage `json:"root"`
		}
		if b, err := os.ReadFile(f); err != nil {
			t.Fatal(err)
		} else if err := json.Unmarshal(b, &ls); err != nil || ls.Version != 1 || len(ls.Root) == 0 {
			t.Errorf("listing %s is not a whole listing: %v", f, err)
		}
	}
	if len(nars) == 0 {
		t.Errorf("no NAR files under %s", data)
	}
}
