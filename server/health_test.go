package server

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/nix-cached/cached/storage"
)

// unreachable is a blob store whose every lookup fails, as S3 does when it
// is down.
type unreachable struct{ storage.Store }

var errDown = errors.New("connection refused")

func (unreachable) Stat(context.Context, string) (storage.Info, error) {
	return storage.Info{}, errDown
}

func (unreachable) Open(context.Context, string) (io.ReadSeekCloser, error) {
	return nil, errDown
}

func TestHealthAndReadiness(t *testing.T) {
	e := newEnv(t, false)
	for _, p := range []string{"/healthz", "/readyz"} {
		e.do("GET", p, "", nil).expect(t, 200, p+" (public even on a private cache)")
	}
	s := e.srv.Config.Handler.(*Server)
	s.store = unreachable{s.store}
	r := e.do("GET", "/readyz", "", nil).expect(t, 503, "readyz with storage down")
	if r.body != "storage not ready\n" {
		t.Errorf("readyz says %q", r.body)
	}
	e.do("GET", "/healthz", "", nil).expect(t, 200, "healthz with storage down")
	if !regexpMatch(`path=/readyz status=503 .*error="connection refused"`, e.logs.String()) {
		t.Errorf("the reason is not logged:\n%s", e.logs)
	}
	e.do("GET", "/nar/"+zeros52+".nar.zst", readToken, nil).expect(t, 500, "GET NAR with storage down is not a 404")
	// A HEAD asks the catalog first.
	e.do("HEAD", "/nar/"+zeros52+".nar.zst", readToken, nil).expect(t, 404, "HEAD of a NAR the catalog lacks")
}
