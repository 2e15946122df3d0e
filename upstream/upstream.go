// Package upstream fetches paths from the binary caches that a cache
// mirrors (pull-through): narinfos, whose signatures must verify against
// the keys the cache was given for its upstreams, and the NARs they name.
// It only reads from upstreams; what is stored, and how, is the server's
// business.
package upstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nix-cached/cached/narinfo"
	"github.com/nix-cached/cached/signing"
	"github.com/nix-cached/cached/storepath"
)

var (
	// ErrNotFound: no upstream has the path (or none has it signed by a
	// configured key).
	ErrNotFound = errors.New("upstream: not found")
	// ErrUnavailable: no upstream has the path as far as could be told,
	// but at least one could not be asked (down, slow, failing).
	ErrUnavailable = errors.New("upstream: unavailable")
)

// Defaults of Config.
const (
	DefaultTimeout = 5 * time.Second
	DefaultMissTTL = 10 * time.Minute
)

// Config configures a Puller.
type Config struct {
	URLs    []string            // the upstreams, in priority order
	Keys    []signing.PublicKey // a narinfo must be signed by one of these
	CAFile  string              // extra CA certificates (PEM) for HTTPS upstreams
	Token   string              // sent as HTTP Basic password (as Nix sends a netrc password)
	Timeout time.Duration       // bound on one narinfo lookup at one upstream (default DefaultTimeout)
	MissTTL time.Duration       // how long a path no upstream has is remembered (default DefaultMissTTL)
	// Observe, when set, is told of every request to an upstream: its
	// URL, what it was ("narinfo", "nar"), the outcome ("hit", "miss",
	// "error") and how long it took.
	Observe func(upstream, what, outcome string, took time.Duration)
	// Received, when set, is told of the NAR bytes read from an upstream.
	Received func(upstream string, n int64)
}

// Found is a narinfo an upstream served, its signature checked.
type Found struct {
	Upstream string           // the upstream's base URL
	NarInfo  *narinfo.NarInfo // as served
}

// Puller looks paths up at the upstreams.
type Puller struct {
	cfg    Config
	client *http.Client

	mu     sync.Mutex
	misses ttlCache[struct{}] // hash parts no upstream has
	found  ttlCache[Found]    // narinfos found lately: a substitution asks for the narinfo, then the NAR
}

// ttlCache remembers values by hash part until a time each, holding at
// most limit of them (beyond, it starts over rather than grow).
type ttlCache[V any] struct {
	m     map[string]ttlEntry[V]
	limit int
}

type ttlEntry[V any] struct {
	v     V
	until time.Time
}

// get returns the value remembered for k, unless it expired by now.
func (c *ttlCache[V]) get(k string, now time.Time) (V, bool) {
	e, ok := c.m[k]
	if ok && now.After(e.until) {
		delete(c.m, k)
		ok = false
	}
	return e.v, ok
}

// put remembers v for k until until.
func (c *ttlCache[V]) put(k string, v V, until time.Time) {
	if c.m == nil || len(c.m) >= c.limit {
		c.m = make(map[string]ttlEntry[V])
	}
	c.m[k] = ttlEntry[V]{v: v, until: until}
}

// foundTTL is how long a narinfo found upstream is reused.
const foundTTL = 10 * time.Minute

// New returns a Puller for cfg.
func New(cfg Config) (*Puller, error) {
	if len(cfg.URLs) == 0 {
		return nil, errors.New("upstream: no upstream URL")
	}
	if len(cfg.Keys) == 0 {
		return nil, errors.New("upstream: no key to check upstream narinfos with (--upstream-key)")
	}
	for i, raw := range cfg.URLs {
		u, err := url.Parse(strings.TrimRight(raw, "/"))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
			return nil, fmt.Errorf("upstream: %q is not an http:// or https:// URL without ?parameters", raw)
		}
		cfg.URLs[i] = u.String()
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MissTTL <= 0 {
		cfg.MissTTL = DefaultMissTTL
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("upstream: CA file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("upstream: CA file %s holds no PEM certificate", cfg.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &Puller{cfg: cfg, client: &http.Client{Transport: tr},
		misses: ttlCache[struct{}]{limit: 1_000_000}, found: ttlCache[Found]{limit: 100_000}}, nil
}

// NarInfo asks the upstreams, in order, for the narinfo of the path with
// this hash part, and returns the first one signed by a configured key.
// Each upstream gets at most Config.Timeout. A path no upstream has is
// remembered for Config.MissTTL (ErrNotFound without asking); when an
// upstream could not be asked and none had the path, the result is
// ErrUnavailable and is not remembered.
func (p *Puller) NarInfo(ctx context.Context, hashPart string) (Found, error) {
	if err := storepath.ValidateHashPart(hashPart); err != nil {
		return Found{}, fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	now := time.Now()
	p.mu.Lock()
	_, missed := p.misses.get(hashPart, now)
	f, hit := p.found.get(hashPart, now)
	p.mu.Unlock()
	switch {
	case missed:
		return Found{}, ErrNotFound
	case hit:
		return f, nil
	}
	var failed []error
	for _, base := range p.cfg.URLs {
		ni, err := p.narInfoAt(ctx, base, hashPart)
		switch {
		case err == nil:
			f := Found{Upstream: base, NarInfo: ni}
			p.mu.Lock()
			p.found.put(hashPart, f, time.Now().Add(foundTTL))
			p.mu.Unlock()
			return f, nil
		case errors.Is(err, ErrNotFound):
		default:
			failed = append(failed, err)
		}
	}
	if len(failed) > 0 {
		return Found{}, fmt.Errorf("%w: %w", ErrUnavailable, errors.Join(failed...))
	}
	p.mu.Lock()
	p.misses.put(hashPart, struct{}{}, time.Now().Add(p.cfg.MissTTL))
	p.mu.Unlock()
	return Found{}, ErrNotFound
}

// narInfoAt fetches and checks one upstream's narinfo.
func (p *Puller) narInfoAt(ctx context.Context, base, hashPart string) (*narinfo.NarInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	start := time.Now()
	outcome := "error"
	defer func() { p.observe(base, "narinfo", outcome, time.Since(start)) }()
	resp, err := p.get(ctx, base+"/"+hashPart+".narinfo")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", base, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusForbidden:
		outcome = "miss" // S3 answers 403 for a missing key without ListBucket
		return nil, ErrNotFound
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%s: narinfo %s: HTTP %s", base, hashPart, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("%s: narinfo %s: %w", base, hashPart, err)
	}
	ni, err := narinfo.Parse(body)
	if err != nil || ni.HashPart() != hashPart {
		return nil, fmt.Errorf("%s: narinfo %s is malformed or names another path: %v", base, hashPart, err)
	}
	if !p.signed(ni) {
		// Not an error of the upstream's: it has the path, but not signed
		// by a key this cache trusts for it. Never served.
		outcome = "miss"
		return nil, ErrNotFound
	}
	outcome = "hit"
	return ni, nil
}

// signed reports whether ni carries a valid signature by a configured key.
func (p *Puller) signed(ni *narinfo.NarInfo) bool {
	fp, err := ni.AppendFingerprint(nil)
	if err != nil {
		return false
	}
	for _, sig := range ni.Sigs {
		for _, k := range p.cfg.Keys {
			if k.Verify(fp, sig) {
				return true
			}
		}
	}
	return false
}

// NAR opens the NAR file that f names, at the upstream that served f. The
// caller reads it (no deadline but ctx's: a large NAR takes its time) and
// closes it.
func (p *Puller) NAR(ctx context.Context, f Found) (io.ReadCloser, error) {
	u, err := url.Parse(f.NarInfo.URL)
	if err != nil || u.IsAbs() || strings.HasPrefix(f.NarInfo.URL, "/") {
		return nil, fmt.Errorf("upstream: %s: narinfo URL %q is not relative", f.Upstream, f.NarInfo.URL)
	}
	start := time.Now()
	resp, err := p.get(ctx, f.Upstream+"/"+f.NarInfo.URL)
	if err != nil {
		p.observe(f.Upstream, "nar", "error", time.Since(start))
		return nil, fmt.Errorf("upstream: %s: %w", f.Upstream, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		p.observe(f.Upstream, "nar", "error", time.Since(start))
		return nil, fmt.Errorf("upstream: %s/%s: HTTP %s", f.Upstream, f.NarInfo.URL, resp.Status)
	}
	p.observe(f.Upstream, "nar", "hit", time.Since(start))
	if p.cfg.Received == nil {
		return resp.Body, nil
	}
	return &counted{ReadCloser: resp.Body, add: func(n int64) { p.cfg.Received(f.Upstream, n) }}, nil
}

// counted reports the bytes read through it.
type counted struct {
	io.ReadCloser
	add func(int64)
}

func (c *counted) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	if n > 0 {
		c.add(int64(n))
	}
	return n, err
}

// get sends a GET with the configured credentials.
func (p *Puller) get(ctx context.Context, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if p.cfg.Token != "" {
		req.SetBasicAuth("cached", p.cfg.Token)
	}
	return p.client.Do(req)
}

func (p *Puller) observe(upstream, what, outcome string, took time.Duration) {
	if p.cfg.Observe != nil {
		p.cfg.Observe(upstream, what, outcome, took)
	}
}
