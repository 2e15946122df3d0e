// Package auth checks access tokens. Tokens come from files given by the
// operator (one a line) and from the catalog (`cached token create`). Only
// SHA-256 hashes of token secrets are kept in memory and in the database,
// and they are compared in constant time.
package auth

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/nix-cached/cached/catalog"
)

// ErrUnauthorized is returned when a request lacks a token that grants what
// it asks for. It carries no detail, by design.
var ErrUnauthorized = errors.New("unauthorized")

// ErrForbidden is returned when a request carries a valid token that does
// not grant what it asks for (a read token pushing). Its message says
// which scope was needed, nothing else.
var ErrForbidden = errors.New("forbidden")

// secretPrefix marks our tokens so that secret scanners can find leaked ones.
const secretPrefix = "cached_"

// NewSecret returns a fresh random token secret.
func NewSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("auth: generating token: %w", err)
	}
	return secretPrefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// Hash returns the SHA-256 of a token secret, the only form that is stored.
func Hash(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// ReadTokenFile reads token secrets from a file, one a line; blank lines and
// lines starting with '#' are skipped.
func ReadTokenFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auth: reading token file: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("auth: reading token file %s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("auth: token file %s holds no token", path)
	}
	return out, nil
}

// TokenStore is the part of the catalog that auth needs.
type TokenStore interface {
	TokenByHash(ctx context.Context, hash []byte) (catalog.Token, error)
}

type staticToken struct {
	hash  []byte
	scope catalog.Scope
}

// Authenticator decides whether a request may read or push.
type Authenticator struct {
	static     []staticToken
	tokens     TokenStore
	publicRead bool
}

// Config lists the token secrets from files and whether reads are public.
type Config struct {
	AdminTokens []string
	PushTokens  []string
	ReadTokens  []string
	PublicRead  bool
}

// New returns an Authenticator; tokens may be nil when only file tokens are used.
func New(cfg Config, tokens TokenStore) *Authenticator {
	a := &Authenticator{tokens: tokens, publicRead: cfg.PublicRead}
	for _, s := range cfg.AdminTokens {
		a.static = append(a.static, staticToken{Hash(s), catalog.ScopeAdmin})
	}
	for _, s := range cfg.PushTokens {
		a.static = append(a.static, staticToken{Hash(s), catalog.ScopePush})
	}
	for _, s := range cfg.ReadTokens {
		a.static = append(a.static, staticToken{Hash(s), catalog.ScopeRead})
	}
	return a
}

// PublicRead reports whether reads need no token.
func (a *Authenticator) PublicRead() bool { return a.publicRead }

// Check returns nil when r carries a token that grants scope (an admin
// token grants everything, a push token also grants reads),
// ErrUnauthorized when it carries no valid token, ErrForbidden when its
// valid token does not grant scope, and another error when the token
// store could not be asked.
func (a *Authenticator) Check(ctx context.Context, r *http.Request, scope catalog.Scope) error {
	if scope == catalog.ScopeRead && a.publicRead {
		return nil
	}
	secret, ok := Secret(r)
	if !ok {
		return ErrUnauthorized
	}
	got, err := a.scopeOf(ctx, secret)
	if err != nil {
		return err
	}
	if rank(got) >= rank(scope) {
		return nil
	}
	return fmt.Errorf("%w: this is %s token; this needs %s token", ErrForbidden, article(got), article(scope))
}

// article names a scope with its article: "a read", "an admin".
func article(s catalog.Scope) string {
	if s == catalog.ScopeAdmin {
		return "an " + string(s)
	}
	return "a " + string(s)
}

// rank orders scopes by what they allow: admin > push > read.
func rank(s catalog.Scope) int {
	switch s {
	case catalog.ScopeAdmin:
		return 3
	case catalog.ScopePush:
		return 2
	case catalog.ScopeRead:
		return 1
	}
	return 0
}

// scopeOf returns the scope a secret grants, or ErrUnauthorized.
func (a *Authenticator) scopeOf(ctx context.Context, secret string) (catalog.Scope, error) {
	h := Hash(secret)
	var found catalog.Scope
	// Compare against every file token without stopping early.
	for _, t := range a.static {
		if subtle.ConstantTimeCompare(h, t.hash) == 1 && rank(t.scope) > rank(found) {
			found = t.scope
		}
	}
	if found != "" {
		return found, nil
	}
	if a.tokens == nil {
		return "", ErrUnauthorized
	}
	// The lookup is by the SHA-256 of a high-entropy secret, so its timing
	// tells nothing useful about the secret itself.
	t, err := a.tokens.TokenByHash(ctx, h)
	if errors.Is(err, catalog.ErrNotFound) {
		return "", ErrUnauthorized
	}
	if err != nil {
		return "", fmt.Errorf("auth: looking up token: %w", err)
	}
	if subtle.ConstantTimeCompare(h, t.Hash) != 1 {
		return "", ErrUnauthorized
	}
	return t.Scope, nil
}

// Secret extracts a token secret from a request: the password of HTTP Basic
// authentication (what Nix sends from a netrc file) or a Bearer token.
func Secret(r *http.Request) (string, bool) {
	if _, pw, ok := r.BasicAuth(); ok && pw != "" {
		return pw, true
	}
	h := r.Header.Get("Authorization")
	const bearer = "Bearer "
	if len(h) > len(bearer) && strings.EqualFold(h[:len(bearer)], bearer) {
		return strings.TrimSpace(h[len(bearer):]), true
	}
	return "", false
}
