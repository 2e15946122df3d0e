package pgtest

import (
	"os"
	"sync"
	"testing"
)

// shared is the cluster a test binary's tests share through Shared.
var shared struct {
	mu   sync.Mutex
	main bool // Main is running the tests: it removes the cluster after
	srv  *Server
	err  error
}

// Main runs the tests of a package whose tests call Shared, then stops
// and removes the shared cluster and exits. Call it from TestMain.
func Main(m *testing.M) {
	shared.mu.Lock()
	shared.main = true
	shared.mu.Unlock()
	code := m.Run()
	shared.mu.Lock()
	if shared.srv != nil {
		shared.srv.remove()
	}
	shared.mu.Unlock()
	os.Exit(code)
}

// Shared returns the test binary's one cluster, started by the first call,
// for tests that only need databases of their own (NewDatabase): starting
// a cluster takes a second or two, creating a database milliseconds.
// Without Main in TestMain nothing would remove it, so each call then
// starts a cluster of its own, as Start does.
func Shared(t testing.TB) *Server {
	t.Helper()
	bin := Require(t)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.main {
		return Start(t)
	}
	if shared.srv == nil && shared.err == nil {
		shared.srv, shared.err = newServer(bin, nil)
	}
	if shared.err != nil {
		t.Fatalf("pgtest: %v", shared.err)
	}
	return shared.srv
}
