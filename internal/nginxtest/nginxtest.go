// Package nginxtest runs nginx for tests: a static file server on
// loopback, over HTTP or HTTPS with a certificate of a test CA, as a
// binary cache that `nix copy --to file://...` wrote is served in
// production. The tests need nginx (Debian's nginx-light; scripts/test-deps
// installs it); without it they skip, or fail under CACHED_REQUIRE_NGINX=1.
package nginxtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nix-cached/cached/internal/syncbuf"
	"github.com/nix-cached/cached/internal/testca"
	"github.com/nix-cached/cached/internal/testtool"
)

// Options configure a Server.
type Options struct {
	TLS       bool   // serve HTTPS with a certificate of a test CA (Server.CAFile)
	LimitRate string // nginx's limit_rate for responses ("1m": a MiB a second), "" for none
}

// Server is a running nginx serving a directory.
type Server struct {
	URL       string // http(s)://127.0.0.1:PORT
	CAFile    string // with TLS: the test CA's certificate (PEM)
	AccessLog string // one line per request: "METHOD URI STATUS BYTES"
	stop      func()
}

// Stop stops nginx (as the end of the test would).
func (s *Server) Stop() { s.stop() }

// Start serves root with nginx until the test ends.
func Start(t *testing.T, root string, opt Options) *Server {
	t.Helper()
	bin := testtool.Find(t, "NGINX", "nginx is not installed (apt-get install nginx-light)", "nginx", "/usr/sbin/nginx")
	dir := t.TempDir()
	addr := testtool.FreeAddr(t)
	s := &Server{URL: "http://" + addr, AccessLog: filepath.Join(dir, "access.log")}
	listen := "listen " + addr + ";"
	if opt.TLS {
		cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
		s.CAFile = filepath.Join(dir, "ca.pem")
		ca := testca.New(t)
		ca.WriteCA(t, s.CAFile)
		ca.Issue(t, cert, key)
		s.URL = "https://" + addr
		listen = fmt.Sprintf("listen %s ssl; ssl_certificate %s; ssl_certificate_key %s;", addr, cert, key)
	}
	limit := ""
	if opt.LimitRate != "" {
		limit = "limit_rate " + opt.LimitRate + ";"
	}
	// One process, no workers: killing it stops nginx, and it reads the
	// test's files as the test's user.
	conf := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 256; }
http {
	log_format plain '$request_method $uri $status $body_bytes_sent';
	access_log %[2]s plain;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	types { text/x-nix-narinfo narinfo; }
	default_type application/octet-stream;
	server {
		%[3]s
		root %[4]s;
		%[5]s
	}
}
`, dir, s.AccessLog, listen, root, limit)
	confFile := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", confFile, "-p", dir, "-e", filepath.Join(dir, "error.log"))
	var out syncbuf.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting nginx: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			cmd.Process.Kill() //nolint:errcheck // it may have exited
			<-done
		})
	}
	t.Cleanup(s.stop)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return s
		}
		select {
		case err := <-done:
			errLog, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx exited: %v\n%s%s", err, out.String(), errLog)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx does not listen on %s", addr)
		}
	}
}

// Requests returns the lines of the access log whose URI has prefix.
func (s *Server) Requests(t *testing.T, prefix string) []string {
	t.Helper()
	b, err := os.ReadFile(s.AccessLog)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && strings.HasPrefix(f[1], prefix) {
			out = append(out, l)
		}
	}
	return out
}
