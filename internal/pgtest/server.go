package pgtest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nix-cached/cached/internal/syncbuf"
)

// startTimeout bounds initdb and the server's start-up.
const startTimeout = time.Minute

// stopTimeout is how long a server has to exit after an immediate
// shutdown request before it is killed.
const stopTimeout = 30 * time.Second

// superuser is the cluster's only role; it needs no password.
const superuser = "postgres"

// defaultSettings trade durability against power loss for speed: a test
// cluster is thrown away, and its tests commit thousands of tiny
// transactions. Commits still reach the kernel, so a committed transaction
// survives Stop.
var defaultSettings = []string{
	"fsync=off",
	"full_page_writes=off",
	"max_connections=200",
}

// Server is one throwaway PostgreSQL cluster listening on 127.0.0.1 and on
// a unix socket in its temporary directory, with trust authentication for
// its superuser "postgres".
type Server struct {
	Port int // TCP port on 127.0.0.1

	bin, dir, data string
	settings       []string
	owner          *syscall.Credential // whom initdb and postgres run as; nil: this process's user

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
	log    *syncbuf.Buffer
}

// Start creates a cluster in a fresh temporary directory, starts it and
// waits until it accepts connections; t.Cleanup stops it and removes the
// directory. settings ("name=value") are added to the server's command
// line after the defaults, which turn fsync off.
func Start(t testing.TB, settings ...string) *Server {
	t.Helper()
	bin := Require(t)
	s, err := newServer(bin, settings)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(s.remove)
	return s
}

// newServer creates and starts a cluster; the caller removes it.
func newServer(bin string, settings []string) (*Server, error) {
	s := &Server{bin: bin, settings: append(append([]string(nil), defaultSettings...), settings...)}
	var err error
	if s.dir, err = os.MkdirTemp("", "cached-pgtest-"); err != nil {
		return nil, err
	}
	s.data = filepath.Join(s.dir, "data")
	if err := s.create(); err != nil {
		s.remove()
		return nil, err
	}
	for range 3 { // a free port may be taken before the server binds it
		if s.Port, err = freePort(); err != nil {
			break
		}
		if err = s.start(); err == nil {
			return s, nil
		}
	}
	s.remove()
	return nil, fmt.Errorf("starting PostgreSQL: %w", err)
}

// create runs initdb. As root it runs it, and later the server, as the
// postgres system user, which owns the directory: both refuse root.
func (s *Server) create() error {
	if os.Geteuid() == 0 {
		u, err := user.Lookup(superuser)
		if err != nil {
			return fmt.Errorf("running as root needs a %q system user to run PostgreSQL as: %w", superuser, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.owner = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(s.dir, uid, gid); err != nil {
			return err
		}
	}
	var out syncbuf.Buffer
	cmd := s.command("initdb", "-D", s.data, "-U", superuser, "--auth=trust",
		"--encoding=UTF8", "--locale=C", "--no-sync")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("initdb: %w: %s", err, out.String())
	}
	// Trust, but only on the private socket and loopback.
	hba := "local all all trust\nhost all all 127.0.0.1/32 trust\n"
	return s.writeOwned(filepath.Join(s.data, "pg_hba.conf"), hba)
}

// writeOwned writes a file of the data directory, owned by the server's user.
func (s *Server) writeOwned(path, body string) error {
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		return err
	}
	if s.owner != nil {
		return os.Chown(path, int(s.owner.Uid), int(s.owner.Gid))
	}
	return nil
}

// command returns a command running the named PostgreSQL program as the
// server's user, with no PG* settings of this process.
func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") && !strings.HasPrefix(kv, "LC_") && !strings.HasPrefix(kv, "LANG") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "LC_ALL=C")
	cmd.Dir = s.dir
	setProcAttr(cmd, s.owner)
	return cmd
}

// start runs the postmaster as a child of this process (not through
// pg_ctl, whose server would not be our child and would survive a crashed
// test binary) and waits until it accepts connections.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	args := []string{"-D", s.data, "-p", strconv.Itoa(s.Port), "-h", "127.0.0.1", "-k", s.dir}
	for _, kv := range s.settings {
		args = append(args, "-c", kv)
	}
	cmd := s.command("postgres", args...)
	s.log = &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }() //nolint:errcheck // stopped on purpose
	s.cmd, s.exited = cmd, exited

	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			s.cmd = nil
			return fmt.Errorf("postgres exited: %s", s.log.String())
		case <-time.After(20 * time.Millisecond):
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, s.URL("postgres"))
		if err == nil {
			err = conn.Ping(ctx)
			conn.Close(ctx) //nolint:errcheck // only a probe
		}
		cancel()
		if err == nil {
			return nil
		}
	}
	s.stopLocked()
	return fmt.Errorf("postgres not ready after %v: %s", startTimeout, s.log.String())
}

// Stop shuts the server down at once (an immediate shutdown, as after a
// crash the next start recovers from the WAL): an outage.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

// Restart starts the server again, after Stop, on the same port with the
// same data, and waits until it accepts connections.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	s.stopLocked()
	s.mu.Unlock()
	if err := s.start(); err != nil {
		t.Fatalf("pgtest: restarting PostgreSQL: %v", err)
	}
}

// stopLocked asks the postmaster for an immediate shutdown, kills it if it
// lingers, and waits for it to exit. s.mu is held.
func (s *Server) stopLocked() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGQUIT) //nolint:errcheck // it may have exited already
	select {
	case <-s.exited:
	case <-time.After(stopTimeout):
		s.cmd.Process.Kill() //nolint:errcheck // it may have exited meanwhile
		<-s.exited
	}
	s.cmd = nil
}

// remove stops the server and deletes its directory.
func (s *Server) remove() {
	s.mu.Lock()
	s.stopLocked()
	s.mu.Unlock()
	os.RemoveAll(s.dir) //nolint:errcheck // a temporary directory
}

// URL returns the postgres:// URL of the named database as the superuser,
// over TCP on loopback.
func (s *Server) URL(database string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", superuser, s.Port, database)
}

// Logs returns what the server printed since it last started.
func (s *Server) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.log == nil {
		return ""
	}
	return s.log.String()
}

// dbSeq makes database names unique within a process.
var dbSeq atomic.Int64

// NewDatabase creates an empty database with a unique name and returns its
// URL; t.Cleanup drops it, if the server is up by then.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("test_%d_%s", dbSeq.Add(1), strings.ToLower(rand.Text()[:8]))
	if err := s.admin(context.Background(), "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.admin(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") //nolint:errcheck // best effort
	})
	return s.URL(name)
}

// admin runs one statement in the postgres database.
func (s *Server) admin(ctx context.Context, stmt string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx) //nolint:errcheck // the statement's error matters
	_, err = conn.Exec(ctx, stmt)
	return err
}

// freePort returns a loopback port free at the moment.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, errors.New("finding a free port: not a TCP address")
	}
	return addr.Port, nil
}
