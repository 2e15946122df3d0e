// Package e2e runs the cached binary against the real Nix client.
package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nix-cached/cached/internal/syncbuf"
)

// binary is the cached executable built once for the package's tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cached-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "cached")
	build := exec.Command("go", "build", "-o", binary, "../cmd/cached")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building cached:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running `cached serve`.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	URL    string
	Stdout *syncbuf.Buffer
	Stderr *syncbuf.Buffer
	done   chan error
}

var servingLine = regexp.MustCompile(`cached: serving (https?://\S+)`)

// start runs `cached serve args...` in dir with extra environment and waits
// until it prints the address it serves. Pass --listen 127.0.0.1:0 to get a
// free port.
func start(t *testing.T, dir string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, Stdout: &syncbuf.Buffer{}, Stderr: &syncbuf.Buffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(binary, append([]string{"serve"}, args...)...)
	p.cmd.Dir = dir
	// The tests read the request log as it is written: no batching.
	p.cmd.Env = append(append(os.Environ(), "CACHED_LOG_FLUSH=0"), env...)
	outR, outW := io.Pipe()
	p.cmd.Stdout = io.MultiWriter(p.Stdout, outW)
	p.cmd.Stderr = p.Stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting cached: %v", err)
	}
	go func() { p.done <- p.cmd.Wait(); outW.Close() }()
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			if m := servingLine.FindStringSubmatch(sc.Text()); m != nil {
				urlc <- m[1]
				break
			}
		}
		io.Copy(io.Discard, outR)
	}()
	select {
	case p.URL = <-urlc:
	case err := <-p.done:
		t.Fatalf("cached exited before serving: %v\nstdout:\n%s\nstderr:\n%s", err, p.Stdout, p.Stderr)
	case <-time.After(60 * time.Second):
		p.cmd.Process.Kill()
		t.Fatalf("cached did not start\nstdout:\n%s\nstderr:\n%s", p.Stdout, p.Stderr)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("cached stdout:\n%s\ncached stderr:\n%s", p.Stdout, p.Stderr)
		}
	})
	return p
}

// stop sends SIGTERM and checks that the server shuts down cleanly.
func (p *proc) stop() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			p.t.Fatalf("cached exited with %v after SIGTERM\n%s", err, p.Stderr)
		}
	case <-time.After(60 * time.Second):
		p.t.Fatal("cached did not stop after SIGTERM")
	}
}

// requests returns the request log lines with this method.
func (p *proc) requests(method string) []string {
	var out []string
	for _, l := range strings.Split(p.Stderr.String(), "\n") {
		if strings.Contains(l, "msg=request") && strings.Contains(l, "method="+method+" ") {
			out = append(out, l)
		}
	}
	return out
}

// get fetches a path from the server with an optional bearer token.
func (p *proc) get(path, token string) (int, string) {
	p.t.Helper()
	return p.do(http.MethodGet, path, token, nil)
}

func (p *proc) do(method, path, token string, body []byte) (int, string) {
	p.t.Helper()
	req, err := http.NewRequest(method, p.URL+path, bytes.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// netrc writes a netrc file that gives Nix the token for the server's host.
func netrc(t *testing.T, token string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "netrc")
	if err := os.WriteFile(f, []byte("machine 127.0.0.1 login cached password "+token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// cachedTry runs a cached subcommand and returns its stdout and stderr
// together, and its error, without failing the test.
func cachedTry(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// cachedCmd runs a cached subcommand and returns its stdout.
func cachedCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("cached %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// cache is a server started by startCache, with what tests need to use it.
type cache struct {
	*proc
	Dir   string // working directory of the server
	Data  string // its --data-dir
	Token string // a push token
	Pub   string // its public key, as printed at start
}

var publicKeyLine = regexp.MustCompile(`public key: (\S+)`)

// startCache starts `cached serve` on a free port with a fresh data
// directory, a push token file, the blob backend's storage flags and extra.
func startCache(t *testing.T, b blobBackend, extra ...string) *cache {
	t.Helper()
	dir := t.TempDir()
	c := &cache{Dir: dir, Data: filepath.Join(dir, "data"), Token: "push-" + fmt.Sprint(time.Now().UnixNano())}
	writeFile(t, filepath.Join(dir, "tokens"), c.Token+"\n")
	args := append([]string{"--listen", "127.0.0.1:0", "--data-dir", c.Data,
		"--push-token-file", filepath.Join(dir, "tokens")}, b.args()...)
	c.proc = start(t, dir, b.env, append(args, extra...)...)
	m := publicKeyLine.FindStringSubmatch(c.Stdout.String())
	if m == nil {
		t.Fatalf("no public key printed:\n%s", c.Stdout)
	}
	c.Pub = m[1]
	return c
}

// verify runs `cached verify --contents` on the cache's data and fails the
// test unless it reports no problem.
func (c *cache) verify(t *testing.T, b blobBackend) {
	t.Helper()
	if out := cachedCmd(t, c.Dir, append([]string{"verify", "--contents", "--data-dir", c.Data}, b.args()...)...); !strings.Contains(out, ": OK") {
		t.Fatalf("cached verify:\n%s", out)
	}
}
