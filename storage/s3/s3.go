// Package s3 is a storage.Store in an S3 bucket: AWS, or any server that
// speaks the S3 API (MinIO, Garage, R2, B2, Ceph). It uses only the core of
// the API (no object lock, tagging, versioning or encryption settings).
//
// Key "nar/x.nar.zst" is object PREFIX/nar/x.nar.zst. Uploads stream in
// constant memory: an object smaller than the first part size is sent with
// one PutObject at Commit; a larger one goes as a multipart upload to a
// temporary object under PREFIX/.uploads/, which Commit completes and then
// copies to its key server-side, so the key only ever shows a whole object.
// A background janitor removes what a crash leaves under .uploads/.
package s3

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nix-cached/cached/storage"
)

// ErrInvalidConfig is returned by ParseURL and New for a configuration they
// cannot use.
var ErrInvalidConfig = errors.New("s3: invalid configuration")

// ErrUploadClosed is returned by Write or Commit on an upload that was
// already committed, aborted or failed.
var ErrUploadClosed = errors.New("s3: upload already committed or aborted")

// ErrTooLarge is returned by Write when an upload outgrows the 10,000 parts
// of an S3 multipart upload.
var ErrTooLarge = errors.New("s3: object too large for a multipart upload")

// ErrObjectChanged is returned by a reader that must fetch more of its
// object after the object was replaced: the old bytes are gone.
var ErrObjectChanged = errors.New("s3: object replaced while being read")

// S3 limits and the defaults of Config.
const (
	minPartSize = 5 << 20    // smallest part but the last
	maxPartSize = 5 << 30    // largest part, and largest CopyObject
	maxParts    = 10000      // parts of a multipart upload
	maxKeyLen   = 1024       // bytes of an object key
	uploadsDir  = ".uploads" // temporary objects, under the prefix

	defaultRegion          = "us-east-1"
	defaultPartSize        = 8 << 20
	defaultUniformPartSize = 16 << 20
	defaultMaxBuffer       = 32 << 20
	defaultMaxAttempts     = 5
	defaultMaxBackoff      = time.Second
	defaultDialTimeout     = 5 * time.Second
	defaultResponseTimeout = 15 * time.Second
	defaultReadTimeout     = 15 * time.Second
	defaultCopyTimeout     = 15 * time.Minute
)

// Config says where the store lives and how to talk to it. Credentials are
// not part of it: they come from the SDK's default chain.
type Config struct {
	Bucket    string
	Prefix    string // key prefix inside the bucket, no leading/trailing slash; "" for the bucket root
	Endpoint  string // "" means AWS; otherwise e.g. http://127.0.0.1:9000
	Region    string // default us-east-1
	PathStyle bool   // path-style addressing; ParseURL sets it whenever an endpoint is given, unless path-style=false
	PartSize  int64  // first multipart part size, default 8 MiB (16 MiB with UniformParts), at least 5 MiB
	// UniformParts keeps every part PartSize long instead of doubling the
	// size every 1,000 parts, as R2 and Garage require; the largest object
	// is then 10,000 × PartSize (156 GiB by default).
	UniformParts bool
	// MaxBuffer bounds the part bytes one upload holds in memory, filling
	// or in flight (default 32 MiB); it never goes below one part and a
	// chunk, so a small value makes parts go one at a time.
	MaxBuffer   int64
	MaxAttempts int // SDK attempts per request, the first included (default 5)
	// MaxBackoff is the longest wait between two attempts (default 1 s).
	// The SDK waits the whole of it from the second retry on, so 5
	// attempts against an S3 that is down answer in about 4 s: a client
	// gets its 5xx (and retries on its own) instead of hanging.
	MaxBackoff time.Duration
	// DialTimeout bounds connecting, TLS included (default 5 s).
	DialTimeout time.Duration
	// ResponseTimeout bounds the wait for response headers once a request
	// is sent (default 15 s).
	ResponseTimeout time.Duration
	// ReadTimeout bounds a silence while reading a response (default 15 s).
	ReadTimeout time.Duration
	// CopyTimeout replaces ResponseTimeout and ReadTimeout for the calls
	// that copy or assemble a large object server-side (default 15 min).
	CopyTimeout time.Duration
}

// withDefaults returns c with its zero fields set to their defaults.
func (c Config) withDefaults() Config {
	set := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	if c.Region == "" {
		c.Region = defaultRegion
	}
	if c.PartSize == 0 && c.UniformParts {
		c.PartSize = defaultUniformPartSize
	}
	if c.PartSize == 0 {
		c.PartSize = defaultPartSize
	}
	if c.MaxBuffer == 0 {
		c.MaxBuffer = defaultMaxBuffer
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = defaultMaxAttempts
	}
	set(&c.MaxBackoff, defaultMaxBackoff)
	set(&c.DialTimeout, defaultDialTimeout)
	set(&c.ResponseTimeout, defaultResponseTimeout)
	set(&c.ReadTimeout, defaultReadTimeout)
	set(&c.CopyTimeout, defaultCopyTimeout)
	return c
}

// validate checks a configuration that has its defaults.
func (c Config) validate() error {
	if err := checkBucket(c.Bucket); err != nil {
		return err
	}
	if c.Prefix != "" {
		if err := storage.ValidateKey(c.Prefix); err != nil {
			return fmt.Errorf("%w: prefix: not a slash-separated name of [A-Za-z0-9._+=:!-] segments not starting with a dot", ErrInvalidConfig)
		}
		if len(c.Prefix) > maxKeyLen/2 {
			return fmt.Errorf("%w: prefix of %d bytes leaves too little of S3's 1024-byte keys", ErrInvalidConfig, len(c.Prefix))
		}
	}
	if c.Endpoint != "" {
		if err := checkEndpoint(c.Endpoint); err != nil {
			return err
		}
	}
	if c.PartSize < minPartSize || c.PartSize > maxPartSize {
		return fmt.Errorf("%w: part size %d, want 5 MiB to 5 GiB", ErrInvalidConfig, c.PartSize)
	}
	if c.MaxBuffer < 0 || c.MaxAttempts < 0 {
		return fmt.Errorf("%w: negative MaxBuffer or MaxAttempts", ErrInvalidConfig)
	}
	for _, d := range []time.Duration{c.MaxBackoff, c.DialTimeout, c.ResponseTimeout, c.ReadTimeout, c.CopyTimeout} {
		if d < 0 {
			return fmt.Errorf("%w: negative timeout %v", ErrInvalidConfig, d)
		}
	}
	return nil
}

// Store is a storage.Store in an S3 bucket.
type Store struct {
	cfg     Config
	client  *awss3.Client
	slow    func(*awss3.Options) // per-call option: the HTTP client with CopyTimeout
	presign *awss3.PresignClient
	prefix  string // cfg.Prefix + "/", or "" for the bucket root

	copyLimit    int64 // largest object one CopyObject copies
	copyPartSize int64 // smallest range of a multipart copy

	chunks sync.Pool // of *[]byte of maxChunk capacity, for uploads to reuse

	liveMu sync.Mutex
	live   map[string]bool // temporary objects of this process's uploads

	stopJanitor context.CancelFunc
	janitorDone chan struct{}
	closeOnce   sync.Once
}

var (
	_ storage.Store     = (*Store)(nil)
	_ storage.Presigner = (*Store)(nil)
)

// New returns a store for cfg. It does not contact S3, so it succeeds while
// S3 is unreachable; requests fail until it comes back. Credentials come
// from the SDK's default chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY,
// shared configuration files, instance roles). New starts a janitor that
// removes temporary objects and multipart uploads left by a crash; Close
// stops it.
func New(ctx context.Context, cfg Config) (*Store, error) {
	return newStore(ctx, cfg, defaultJanitor)
}

// newStore is New with the janitor's schedule as a parameter.
func newStore(ctx context.Context, cfg Config, j janitorSchedule) (*Store, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	client, slow, err := newClient(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s := &Store{
		cfg:          cfg,
		client:       client,
		slow:         slow,
		presign:      awss3.NewPresignClient(client),
		copyLimit:    maxPartSize,
		copyPartSize: 512 << 20,
		live:         make(map[string]bool),
		janitorDone:  make(chan struct{}),
	}
	if cfg.Prefix != "" {
		s.prefix = cfg.Prefix + "/"
	}
	jctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.stopJanitor = stop
	go s.runJanitor(jctx, j)
	return s, nil
}

// Close stops the janitor. Readers already opened stay usable.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.stopJanitor()
		<-s.janitorDone
	})
	return nil
}

// objectKey validates key and returns its object key in the bucket.
func (s *Store) objectKey(key string) (string, error) {
	if err := storage.ValidateKey(key); err != nil {
		return "", err
	}
	if n := len(s.prefix) + len(key); n > maxKeyLen {
		return "", fmt.Errorf("%w: %d bytes with the bucket prefix, over S3's limit of %d", storage.ErrInvalidKey, n, maxKeyLen)
	}
	return s.prefix + key, nil
}

// check validates key and ctx before op and returns key's object key.
func (s *Store) check(ctx context.Context, op, key string) (string, error) {
	obj, err := s.objectKey(key)
	if err != nil {
		return "", fmt.Errorf("s3: %s: %w", op, err)
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("s3: %s %s: %w", op, key, err)
	}
	return obj, nil
}

// uploadsPrefix is the prefix of every temporary object.
func (s *Store) uploadsPrefix() string {
	return s.prefix + uploadsDir + "/"
}

// setLive records whether obj is a temporary object in use by this process,
// so that the janitor leaves it alone however old it is.
func (s *Store) setLive(obj string, live bool) {
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	if live {
		s.live[obj] = true
	} else {
		delete(s.live, obj)
	}
}

// isLive reports whether obj is a temporary object in use by this process.
func (s *Store) isLive(obj string) bool {
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	return s.live[obj]
}
