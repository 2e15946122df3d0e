package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nix-cached/cached/narinfo"
	"github.com/nix-cached/cached/signing"
)

// Cache is a cache server as its clients see it, over HTTP.
type Cache struct {
	// URL is the cache's base URL, without a trailing slash. Credentials
	// in it (http://user:token@host) are sent as Basic authentication, as
	// Nix sends them.
	URL string
	// Token, when set, is sent as a bearer token.
	Token string
	HTTP  *http.Client
}

// ErrHTTP is wrapped by errors that are the server's answer.
var ErrHTTP = errors.New("cache answered")

// NewCache returns a client of the cache at raw, an http or https URL.
func NewCache(raw, token string) (*Cache, error) {
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an http:// or https:// URL", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%q: give the cache's URL without ?parameters", raw)
	}
	return &Cache{URL: u.String(), Token: token, HTTP: &http.Client{Timeout: 5 * time.Minute}}, nil
}

// Host returns the URL's host name, as a netrc file names it.
func (c *Cache) Host() string {
	u, _ := url.Parse(c.URL)
	return u.Hostname()
}

// Redacted returns the URL with any password in it hidden.
func (c *Cache) Redacted() string {
	u, _ := url.Parse(c.URL)
	return u.Redacted()
}

// Bare returns the URL without credentials: pushes take the push token
// from the netrc file or Token instead.
func (c *Cache) Bare() string {
	u, _ := url.Parse(c.URL)
	u.User = nil
	return u.String()
}

// do sends a request and returns the body of a 2xx answer. A query
// (GET, or a POST that only asks) is sent again on a fresh connection
// when a reused one turns out closed by the server or a proxy in front
// of it as the request goes out; net/http retries only what it is told
// is idempotent.
func (c *Cache) do(ctx context.Context, method, path string, body []byte, query bool) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.URL+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if query && method != http.MethodGet {
		req.Header["Idempotency-Key"] = nil // marks it idempotent; not sent
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, c.Redacted()+path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, c.Redacted()+path, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%w %d to %s %s: %s", ErrHTTP, resp.StatusCode, method, c.Redacted()+path, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// Info is what a cache's nix-cache-info says.
type Info struct {
	StoreDir string
	Priority string
}

// Info fetches and reads the cache's nix-cache-info.
func (c *Cache) Info(ctx context.Context) (Info, error) {
	body, err := c.do(ctx, http.MethodGet, "/nix-cache-info", nil, true)
	if err != nil {
		return Info{}, err
	}
	var info Info
	for _, l := range strings.Split(string(body), "\n") {
		k, v, _ := strings.Cut(l, ":")
		switch strings.TrimSpace(k) {
		case "StoreDir":
			info.StoreDir = strings.TrimSpace(v)
		case "Priority":
			info.Priority = strings.TrimSpace(v)
		}
	}
	if info.StoreDir == "" {
		return Info{}, fmt.Errorf("%s/nix-cache-info has no StoreDir: is this a Nix binary cache?", c.Redacted())
	}
	return info, nil
}

// PublicKeys fetches the keys the cache signs with, from /public-key.
func (c *Cache) PublicKeys(ctx context.Context) ([]signing.PublicKey, error) {
	body, err := c.do(ctx, http.MethodGet, "/public-key", nil, true)
	if err != nil {
		return nil, err
	}
	var keys []signing.PublicKey
	for _, l := range strings.Fields(string(body)) {
		k, err := signing.ParsePublicKey(l)
		if err != nil {
			return nil, fmt.Errorf("%s/public-key: %w", c.Redacted(), err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s/public-key lists no key", c.Redacted())
	}
	return keys, nil
}

// lookupBatch is how many paths one lookup request asks about (the
// server takes up to 100,000).
const lookupBatch = 20_000

// Lookup asks the cache which of the paths (by hash part) it serves, in
// batches, and returns their narinfos as served. It needs a push token.
func (c *Cache) Lookup(ctx context.Context, hashes []string) (map[string]*narinfo.NarInfo, error) {
	held := make(map[string]*narinfo.NarInfo, len(hashes))
	for start := 0; start < len(hashes); start += lookupBatch {
		batch := hashes[start:min(start+lookupBatch, len(hashes))]
		req, err := json.Marshal(map[string][]string{"hashes": batch})
		if err != nil {
			return nil, err
		}
		body, err := c.do(ctx, http.MethodPost, "/_cached/lookup", req, true)
		if err != nil {
			return nil, err
		}
		var resp struct {
			NarInfos map[string]string `json:"narinfos"`
		}
		if err := json.Unmarshal(body, &resp); err != nil {
			return nil, fmt.Errorf("%s/_cached/lookup: %w", c.Redacted(), err)
		}
		for h, text := range resp.NarInfos {
			ni, err := narinfo.Parse([]byte(text))
			if err != nil {
				return nil, fmt.Errorf("%s/_cached/lookup: narinfo of %s: %w", c.Redacted(), h, err)
			}
			held[h] = ni
		}
	}
	return held, nil
}

// Pin pins a path in the cache under name, keeping keep previous pins of
// that name. It needs a push token.
func (c *Cache) Pin(ctx context.Context, name, storePath string, keep int) error {
	req, err := json.Marshal(map[string]any{"name": name, "storePath": storePath, "keep": keep})
	if err != nil {
		return err
	}
	_, err = c.do(ctx, http.MethodPost, "/_cached/pins", req, false)
	return err
}
