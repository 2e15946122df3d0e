package pgtest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

// connect opens a connection to url or fails the test.
func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatalf("connecting to %s: %v", url, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// TestServer creates two databases, writes to one, stops the server and
// checks that it is unreachable, then restarts it and reads the row back.
func TestServer(t *testing.T) {
	srv := Start(t)
	a, b := srv.NewDatabase(t), srv.NewDatabase(t)
	if a == b {
		t.Fatalf("two databases with URL %s", a)
	}
	if !strings.HasPrefix(a, "postgres://postgres@127.0.0.1:"+strconv.Itoa(srv.Port)+"/") {
		t.Errorf("URL %q is not on loopback port %d", a, srv.Port)
	}
	ctx := t.Context()
	conn := connect(t, a)
	if _, err := conn.Exec(ctx, `CREATE TABLE kept (v text); INSERT INTO kept VALUES ('across restarts')`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := connect(t, b).QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE tablename = 'kept'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("the second database sees %d tables named kept (%v), want 0", n, err)
	}

	srv.Stop(t)
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(srv.Port), time.Second); err == nil {
		c.Close()
		t.Fatal("the server still accepts connections after Stop")
	}
	if err := conn.Ping(ctx); err == nil {
		t.Error("a connection opened before Stop still works")
	}

	srv.Restart(t)
	var v string
	if err := connect(t, a).QueryRow(ctx, `SELECT v FROM kept`).Scan(&v); err != nil || v != "across restarts" {
		t.Errorf("after Restart: %q, %v", v, err)
	}
}

// TestShared checks that Shared returns one cluster, listening on
// loopback only, whose files root does not own.
func TestShared(t *testing.T) {
	srv := Shared(t)
	if Shared(t) != srv {
		t.Error("Shared started a second cluster")
	}
	var listen string
	if err := connect(t, srv.NewDatabase(t)).QueryRow(t.Context(),
		`SELECT current_setting('listen_addresses')`).Scan(&listen); err != nil {
		t.Fatal(err)
	}
	if listen != "127.0.0.1" {
		t.Errorf("listen_addresses = %q, want 127.0.0.1", listen)
	}
	fi, err := os.Stat(srv.data)
	if err != nil {
		t.Fatal(err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 && st.Uid == 0 {
		t.Errorf("the data directory is root's: the server would refuse to run")
	}
}

// envHelper makes the test binary a helper that starts a server, prints
// its port and waits to be killed.
const envHelper = "CACHED_PGTEST_HELPER"

func TestHelperProcess(t *testing.T) {
	if os.Getenv(envHelper) != "1" {
		t.Skip("only runs as a helper process")
	}
	srv := Start(t)
	fmt.Printf("server %d %s\n", srv.Port, srv.dir)
	time.Sleep(time.Hour)
}

// TestServerDiesWithTestBinary kills a test process that started a server
// and checks that the server goes away too.
func TestServerDiesWithTestBinary(t *testing.T) {
	Require(t)
	if runtime.GOOS != "linux" {
		t.Skip("the kernel signals orphaned servers on Linux only")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.v")
	cmd.Env = append(os.Environ(), envHelper+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var port, dir string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if _, err := fmt.Sscanf(sc.Text(), "server %s %s", &port, &dir); err == nil {
			break
		}
	}
	if port == "" || !strings.Contains(dir, "cached-pgtest-") {
		t.Fatalf("the helper printed no server: %v", sc.Err())
	}
	defer os.RemoveAll(dir) // the killed helper could not
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait() //nolint:errcheck // killed
	for range 600 {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second)
		if err != nil {
			return
		}
		c.Close()
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("the server on port %s outlived its test process by 30s", port)
}
