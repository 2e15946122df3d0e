package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// server is a running cached, nginx or ncps.
type server struct {
	name    string
	URL     string
	dir     string // cached's or ncps's data directory
	pubPath string // where it serves its public key ("" for nginx)
	cmd     *exec.Cmd
	done    chan error    // the exit, received once by whoever waits first
	exited  chan struct{} // closed when the process has exited
}

// watch waits for the process in the background, after first is closed
// when it is not nil (Wait closes the output pipes: their readers must be
// done).
func (s *server) watch(first <-chan struct{}) {
	s.done = make(chan error, 1)
	s.exited = make(chan struct{})
	go func() {
		if first != nil {
			<-first
		}
		s.done <- s.cmd.Wait()
		close(s.exited)
	}()
}

var servingLine = regexp.MustCompile(`cached: serving (https?://\S+)`)

// startCached runs `cached serve` on dataDir with a push token and the
// default logging (a line per request, to a file), and waits until it
// serves.
func (b *bench) startCached(ctx context.Context, dataDir string, extra ...string) (*server, error) {
	args := append([]string{"serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir,
		"--push-token-file", b.tokenFile}, extra...)
	cmd := exec.CommandContext(ctx, b.cached, args...)
	logf, err := os.Create(dataDir + ".log")
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{name: "cached", cmd: cmd, dir: dataDir, pubPath: "/public-key"}
	urls := make(chan string, 1)
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := servingLine.FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
			}
		}
	}()
	s.watch(scanned)
	select {
	case s.URL = <-urls:
		return s, nil
	case err := <-s.done:
		return nil, fmt.Errorf("cached serve exited before serving: %v (log: %s.log)", err, dataDir)
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		return nil, fmt.Errorf("cached serve did not start within a minute (log: %s.log)", dataDir)
	}
}

// startNginx serves root as a static binary cache the way one is usually
// served: sendfile, keep-alive, an access log, a worker per core.
func (b *bench) startNginx(ctx context.Context, root string) (*server, error) {
	return b.runNginx(ctx, "nginx", root, "")
}

// startDAV serves root as a binary cache that takes pushes through
// nginx's WebDAV PUT: each upload is written to a file as it comes, with
// no checks, no metadata and no fsync. It is the cheapest thing a push
// over HTTP can reach, so it measures what the Nix client itself costs.
func (b *bench) startDAV(ctx context.Context, root string) (*server, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	info := "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n"
	if err := os.WriteFile(filepath.Join(root, "nix-cache-info"), []byte(info), 0o644); err != nil {
		return nil, err
	}
	return b.runNginx(ctx, "nginx-dav", root, "dav_methods PUT; create_full_put_path on; client_max_body_size 0;")
}

// runNginx starts nginx on root with its files under the work directory's
// name, adding directives to its server block.
func (b *bench) runNginx(ctx context.Context, name, root, directives string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	prefix := filepath.Join(b.work, name)
	if err := os.MkdirAll(prefix, 0o755); err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`user root;
worker_processes auto;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 4096; }
http {
	access_log %[1]s/access.log;
	sendfile on;
	tcp_nopush on;
	keepalive_requests 1000000;
	types { text/x-nix-narinfo narinfo; text/x-nix-cache-info nix-cache-info; application/x-nix-nar nar zst xz; }
	default_type application/octet-stream;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	server {
		listen 127.0.0.1:%[2]d;
		root %[3]s;
		%[4]s
	}
}
`, prefix, port, root, directives)
	confPath := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "nginx", "-p", prefix, "-c", confPath, "-g", "daemon off;")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("nginx: %w", err)
	}
	s := &server{name: "nginx", URL: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd}
	s.watch(nil)
	for range 200 {
		if resp, err := http.Get(s.URL + "/nix-cache-info"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	s.stop()
	return nil, fmt.Errorf("nginx did not serve %s/nix-cache-info", root)
}

// stop ends the server with SIGTERM (nginx's master then stops its
// workers) and waits for it. Stopping a stopped server does nothing.
func (s *server) stop() {
	if s == nil {
		return
	}
	select {
	case <-s.exited:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
}

// resetPeak resets the kernel's peak RSS record (VmHWM) of the server.
func (s *server) resetPeak() error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", s.cmd.Process.Pid), []byte("5"), 0)
}

// peakMiB is the server's peak RSS since the last reset.
func (s *server) peakMiB() (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, err := strconv.ParseFloat(f[1], 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no VmHWM for pid %d", s.cmd.Process.Pid)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
