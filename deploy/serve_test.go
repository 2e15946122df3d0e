package deploy

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/nix-cached/cached/internal/syncbuf"
)

// proc is a running `cached serve`.
type proc struct {
	client *http.Client // nil: http.DefaultClient
	cmd    *exec.Cmd
	URL    string
	Stdout *syncbuf.Buffer
	Stderr *syncbuf.Buffer
	done   chan error
}

var servingLine = regexp.MustCompile(`cached: serving (https?://\S+)`)

// patience bounds waits for a process, so that a hang fails instead of
// blocking the test binary; nothing is asserted about durations.
const patience = 2 * time.Minute

// serveCmd is `bin serve args…` in dir with exactly the environment env.
func serveCmd(bin, dir string, env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, append([]string{"serve"}, args...)...)
	cmd.Dir = dir
	cmd.Env = env
	return cmd
}

// startServe runs `bin serve args…` and waits until it prints its address.
func startServe(t *testing.T, bin, dir string, env []string, args ...string) *proc {
	t.Helper()
	return start(t, serveCmd(bin, dir, env, args...))
}

// start runs cmd (a `cached serve`) and waits until it prints its address;
// the process is killed when the test ends.
func start(t *testing.T, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{cmd: cmd, Stdout: &syncbuf.Buffer{}, Stderr: &syncbuf.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.Stdout.Write(append(sc.Bytes(), '\n'))
			if m := servingLine.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case urls <- m[1]:
				default:
				}
			}
		}
		io.Copy(io.Discard, out)
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-p.done
		}
	})
	select {
	case p.URL = <-urls:
		return p
	case err := <-p.done:
		p.done <- err
		t.Fatalf("cached exited before serving: %v\nstdout:\n%s\nstderr:\n%s", err, p.Stdout, p.Stderr)
	case <-time.After(patience):
		t.Fatalf("cached did not start serving\nstderr:\n%s", p.Stderr)
	}
	return nil
}

// request sends a request to the server and returns its status and body.
func (p *proc) request(t *testing.T, method, path string, body io.Reader, header http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, p.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	client := p.client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp.StatusCode, string(b)
}

// get fetches path and fails the test unless the status is want.
func (p *proc) get(t *testing.T, path string, want int) string {
	t.Helper()
	code, body := p.request(t, http.MethodGet, path, nil, nil)
	if code != want {
		t.Fatalf("GET %s: %d %q, want %d", path, code, body, want)
	}
	return body
}

// stop sends SIGTERM, as the kubelet does, and checks a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Errorf("cached exited with %v after SIGTERM\nstderr:\n%s", err, p.Stderr)
		}
	case <-time.After(patience):
		t.Fatal("cached did not stop after SIGTERM")
	}
}

// refusal runs cmd, a `cached serve` that must refuse to start, and
// returns its exit code and standard error. It fails the test if the
// server starts serving.
func refusal(t *testing.T, cmd *exec.Cmd) (int, string) {
	t.Helper()
	var stderr syncbuf.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	served := false
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if servingLine.MatchString(sc.Text()) {
			served = true
			cmd.Process.Kill()
		}
	}
	io.Copy(io.Discard, out)
	err = cmd.Wait()
	if served {
		t.Fatalf("cached started serving; stderr:\n%s", stderr.String())
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), stderr.String()
}
