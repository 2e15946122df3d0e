// Package s3test runs a real MinIO server for tests, on loopback, with its
// data in a temporary directory. Tests that need it call Start (or Require);
// they skip when MinIO is not installed, unless CACHED_REQUIRE_MINIO=1 (set
// by CI), in which case they fail.
//
// CI installs the binary with
//
//	GOBIN=$HOME/.cache/cached-ci/bin go install github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c
package s3test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nix-cached/cached/internal/syncbuf"
	"github.com/nix-cached/cached/internal/testtool"
)

// Region is the region every test server answers for.
const Region = "us-east-1"

// startTimeout bounds MinIO's start-up.
const startTimeout = time.Minute

// Require returns the path of the minio binary: $CACHED_MINIO, else minio
// on PATH, else $HOME/.cache/cached-ci/bin/minio. It skips t when there is
// none, or fails it when CACHED_REQUIRE_MINIO=1.
func Require(t testing.TB) string {
	t.Helper()
	return testtool.Find(t, "MINIO", "MinIO is not installed: run `GOBIN=$HOME/.cache/cached-ci/bin go install "+
		"github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c` or set CACHED_MINIO", "minio", testtool.CIBin("minio"))
}

// Server is a MinIO server on loopback. Its root credentials are its only
// credentials; they are test values, never real secrets.
type Server struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string

	bin, dir, certs string
	addr, console   string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
	log    *syncbuf.Buffer
}

// Start starts MinIO with its data in a fresh temporary directory and
// waits until it is ready. t.Cleanup kills it.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Require(t)
	s := &Server{
		AccessKey: "cached-test-" + strings.ToLower(rand.Text()[:8]),
		SecretKey: rand.Text(),
		bin:       bin,
		dir:       t.TempDir(),
		certs:     t.TempDir(),
	}
	t.Cleanup(func() { s.kill() })
	var err error
	for range 3 { // a free port may be taken before MinIO binds it
		s.addr, s.console = testtool.FreeAddr(t), testtool.FreeAddr(t)
		s.Endpoint = "http://" + s.addr
		if err = s.start(); err == nil {
			return s
		}
	}
	t.Fatalf("s3test: starting MinIO: %v", err)
	return nil
}

// Stop kills the server, as a crash or an outage would.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.kill()
}

// Restart starts the server again on the same port with the same data,
// after Stop, and waits until it is ready.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.kill()
	if err := s.start(); err != nil {
		t.Fatalf("s3test: restarting MinIO: %v", err)
	}
}

// start runs MinIO and waits for its readiness endpoint.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cmd := exec.Command(s.bin, "server", "--quiet",
		"--address", s.addr, "--console-address", s.console,
		"--certs-dir", s.certs, s.dir)
	cmd.Env = append(environ(),
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_BROWSER=off",           // no console web UI
		"MINIO_UPDATE=off",            // no update check against dl.min.io
		"MINIO_CALLHOME_ENABLE=off",   // no diagnostics sent home
		"MINIO_CI_CD=1",               // no root-drive refusal, faster purges
		"MINIO_SCANNER_SPEED=slowest", // leave the CPU to the tests
	)
	s.log = &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = s.log, s.log
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }() //nolint:errcheck // killed on purpose
	s.cmd, s.exited = cmd, exited

	deadline := time.Now().Add(startTimeout)
	client := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("minio exited: %s", s.log.String())
		case <-time.After(50 * time.Millisecond):
		}
		resp, err := client.Get(s.Endpoint + "/minio/health/ready")
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			continue
		}
		// Ready can come before the object layer answers requests
		// (XMinioServerNotInitialized): wait for a real one too.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err = s.Client().ListBuckets(ctx, &awss3.ListBucketsInput{})
		cancel()
		if err == nil {
			return nil
		}
	}
	cmd.Process.Kill() //nolint:errcheck // gave up on it
	<-exited
	return fmt.Errorf("minio not ready after %v: %s", startTimeout, s.log.String())
}

// kill kills the server, if running, and waits for it to exit.
func (s *Server) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill() //nolint:errcheck // it may have exited already
	<-s.exited
	s.cmd = nil
}

// Client returns an S3 client of the server with its root credentials,
// for creating buckets and looking into them.
func (s *Server) Client() *awss3.Client {
	return awss3.New(awss3.Options{
		Region:                     Region,
		BaseEndpoint:               aws.String(s.Endpoint),
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		RetryMaxAttempts:           1,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// bucketSeq makes bucket names unique within a process.
var bucketSeq atomic.Int64

// NewBucket creates a fresh, empty bucket and returns its name.
func (s *Server) NewBucket(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("test-%d-%s", bucketSeq.Add(1), strings.ToLower(rand.Text()[:10]))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Client().CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("s3test: creating bucket %s: %v", name, err)
	}
	return name
}

// Env returns the environment a process needs to reach the server through
// the AWS SDK's default credential chain, and nothing else.
func (s *Server) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		"AWS_REGION=" + Region,
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// Setenv sets Env in this process for the rest of t, so that stores opened
// by the test find the server's credentials.
func (s *Server) Setenv(t testing.TB) {
	t.Helper()
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
}

// URL returns the s3:// URL of prefix in bucket on this server, as the
// --storage flag takes it.
func (s *Server) URL(bucket, prefix string) string {
	u := "s3://" + bucket
	if prefix != "" {
		u += "/" + prefix
	}
	return u + "?endpoint=" + s.Endpoint + "&region=" + Region
}

// Logs returns what the server printed so far.
func (s *Server) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// environ returns this process's environment without MinIO or AWS
// settings, which would change the server's behaviour.
func environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MINIO_") && !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	return env
}
