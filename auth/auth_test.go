package auth

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/catalog/sqlite"
)

func request(basic, bearer string) *http.Request {
	r, _ := http.NewRequest("GET", "http://cache/x.narinfo", nil)
	if basic != "" {
		r.SetBasicAuth("any-login", basic)
	}
	if bearer != "" {
		r.Header.Set("Authorization", "Bearer "+bearer)
	}
	return r
}

func TestCheck(t *testing.T) {
	ctx := context.Background()
	cat, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	created, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	createdRead, _ := NewSecret()
	for name, tok := range map[string]struct {
		secret string
		scope  catalog.Scope
	}{"ci": {created, catalog.ScopePush}, "reader": {createdRead, catalog.ScopeRead}} {
		if err := cat.CreateToken(ctx, catalog.Token{Name: name, Hash: Hash(tok.secret), Scope: tok.scope, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	private := New(Config{AdminTokens: []string{"file-admin"}, PushTokens: []string{"file-push"}, ReadTokens: []string{"file-read"}}, cat)
	public := New(Config{PushTokens: []string{"file-push"}, PublicRead: true}, cat)
	cases := []struct {
		a     *Authenticator
		r     *http.Request
		scope catalog.Scope
		want  error // nil, ErrUnauthorized or ErrForbidden
	}{
		{public, request("", ""), catalog.ScopeRead, nil},
		{public, request("", ""), catalog.ScopePush, ErrUnauthorized},
		{public, request("file-push", ""), catalog.ScopePush, nil},
		{public, request("", "file-push"), catalog.ScopePush, nil},
		{public, request("file-push-", ""), catalog.ScopePush, ErrUnauthorized},
		{public, request(created, ""), catalog.ScopePush, nil},
		{public, request(createdRead, ""), catalog.ScopePush, ErrForbidden},
		{private, request("", ""), catalog.ScopeRead, ErrUnauthorized},
		{private, request("file-read", ""), catalog.ScopeRead, nil},
		{private, request("file-read", ""), catalog.ScopePush, ErrForbidden},
		{private, request("file-push", ""), catalog.ScopeRead, nil},
		{private, request(createdRead, ""), catalog.ScopeRead, nil},
		{private, request("", createdRead), catalog.ScopeRead, nil},
		{private, request("nope", ""), catalog.ScopeRead, ErrUnauthorized},
		{private, request("file-admin", ""), catalog.ScopeAdmin, nil},
		{private, request("file-admin", ""), catalog.ScopePush, nil},
		{private, request("file-admin", ""), catalog.ScopeRead, nil},
		{private, request("file-push", ""), catalog.ScopeAdmin, ErrForbidden},
		{public, request("", ""), catalog.ScopeAdmin, ErrUnauthorized},
		{public, request(created, ""), catalog.ScopeAdmin, ErrForbidden},
	}
	for i, c := range cases {
		err := c.a.Check(ctx, c.r, c.scope)
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("case %d: Check = %v, want %v", i, err, c.want)
		}
	}
	if err := cat.DeleteToken(ctx, "ci"); err != nil {
		t.Fatal(err)
	}
	if err := public.Check(ctx, request(created, ""), catalog.ScopePush); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("a deleted token still works: %v", err)
	}
}

// brokenTokens is a token store that cannot answer.
type brokenTokens struct{}

func (brokenTokens) TokenByHash(context.Context, []byte) (catalog.Token, error) {
	return catalog.Token{}, errors.New("database unreachable")
}

func TestCheckStoreFailureIsNotUnauthorized(t *testing.T) {
	a := New(Config{PublicRead: true}, brokenTokens{})
	err := a.Check(context.Background(), request("some-token", ""), catalog.ScopePush)
	if err == nil || errors.Is(err, ErrUnauthorized) {
		t.Fatalf("got %v, want an error that is not ErrUnauthorized", err)
	}
}

func TestReadTokenFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(f, []byte("# comment\n\n  one  \ntwo\n"), 0o600)
	got, err := ReadTokenFile(f)
	if err != nil || strings.Join(got, ",") != "one,two" {
		t.Fatalf("ReadTokenFile = %q, %v", got, err)
	}
	os.WriteFile(f, []byte("# only comments\n"), 0o600)
	if _, err := ReadTokenFile(f); err == nil {
		t.Fatal("an empty token file was accepted")
	}
}

func TestNewSecret(t *testing.T) {
	a, _ := NewSecret()
	b, _ := NewSecret()
	if a == b || !strings.HasPrefix(a, "cached_") || len(a) < 40 || strings.ContainsAny(a, " \t\n") {
		t.Fatalf("secrets %q, %q", a, b)
	}
}
