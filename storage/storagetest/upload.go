package storagetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"

	"github.com/nix-cached/cached/storage"
)

func testInvisibleUntilCommit(t *testing.T, s storage.Store) {
	u := create(t.Context(), t, s)
	write(t, u, []byte("new object"))
	wantAbsent(t, s, "fresh")
	if l := list(t, s, ""); len(l) != 0 {
		t.Errorf("List during an upload = %v, want nothing", l)
	}
	if err := u.Commit(t.Context(), "fresh"); err != nil {
		t.Fatal(err)
	}
	wantObject(t, s, "fresh", []byte("new object"))

	// Replacing an object: the old one stays until Commit.
	u = create(t.Context(), t, s)
	write(t, u, []byte("replacement"))
	wantObject(t, s, "fresh", []byte("new object"))
	if err := u.Commit(t.Context(), "fresh"); err != nil {
		t.Fatal(err)
	}
	wantObject(t, s, "fresh", []byte("replacement"))
}

func testAbort(t *testing.T, s storage.Store) {
	u := create(t.Context(), t, s)
	write(t, u, []byte("discard me"))
	if err := u.Abort(); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	if err := u.Abort(); err != nil {
		t.Errorf("second Abort: %v", err)
	}
	if err := u.Commit(t.Context(), "aborted"); err == nil {
		t.Error("Commit after Abort succeeded")
	}
	if n, err := u.Write([]byte("more")); err == nil {
		t.Errorf("Write after Abort = %d, nil; want an error", n)
	}
	wantAbsent(t, s, "aborted")
	if l := list(t, s, ""); len(l) != 0 {
		t.Errorf("List after Abort = %v, want nothing", l)
	}
}

func testAbortAfterCommit(t *testing.T, s storage.Store) {
	u := create(t.Context(), t, s)
	write(t, u, []byte("keep me"))
	if err := u.Commit(t.Context(), "kept"); err != nil {
		t.Fatal(err)
	}
	if err := u.Abort(); err != nil {
		t.Errorf("Abort after Commit: %v", err)
	}
	wantObject(t, s, "kept", []byte("keep me"))
}

func testCommitTwice(t *testing.T, s storage.Store) {
	u := create(t.Context(), t, s)
	write(t, u, []byte("once"))
	if err := u.Commit(t.Context(), "first"); err != nil {
		t.Fatal(err)
	}
	if err := u.Commit(t.Context(), "second"); err == nil {
		t.Error("second Commit succeeded")
	}
	if n, err := u.Write([]byte("more")); err == nil {
		t.Errorf("Write after Commit = %d, nil; want an error", n)
	}
	wantAbsent(t, s, "second")
	wantObject(t, s, "first", []byte("once"))
}

func testCancelledCommit(t *testing.T, s storage.Store) {
	Put(t, s, "k", []byte("old"))
	u := create(t.Context(), t, s)
	write(t, u, []byte("new"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := u.Commit(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Errorf("Commit with a cancelled context = %v, want context.Canceled", err)
	}
	if err := u.Commit(t.Context(), "k"); err == nil {
		t.Error("Commit after a failed Commit succeeded")
	}
	if err := u.Abort(); err != nil {
		t.Errorf("Abort after a failed Commit: %v", err)
	}
	wantObject(t, s, "k", []byte("old"))

	u = create(t.Context(), t, s)
	write(t, u, []byte("new"))
	if err := u.Commit(ctx, "other"); err == nil {
		t.Error("Commit with a cancelled context succeeded")
	}
	wantAbsent(t, s, "other")
}

// testCancelledUpload cancels the context given to Create in mid-upload.
func testCancelledUpload(t *testing.T, s storage.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	u := create(ctx, t, s)
	write(t, u, []byte("before"))
	cancel()
	if _, err := u.Write([]byte("after")); !errors.Is(err, context.Canceled) {
		t.Errorf("Write after the upload's context ended = %v, want context.Canceled", err)
	}
	if err := u.Commit(t.Context(), "k"); err == nil {
		t.Error("Commit of a cancelled upload succeeded")
	}
	wantAbsent(t, s, "k")
}

func testDoneContext(t *testing.T, s storage.Store) {
	Put(t, s, "k", []byte("x"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Create(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Create: %v, want context.Canceled", err)
	}
	if _, err := s.Open(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Errorf("Open: %v, want context.Canceled", err)
	}
	if _, err := s.Stat(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Errorf("Stat: %v, want context.Canceled", err)
	}
	if err := s.List(ctx, "", func(storage.Info) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("List: %v, want context.Canceled", err)
	}
	if err := s.Delete(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Errorf("Delete: %v, want context.Canceled", err)
	}
}

// testConcurrentUploads races writers of different contents to one key while
// readers check that every read sees one whole version.
func testConcurrentUploads(t *testing.T, s storage.Store) {
	const writers = 8
	versions := make([][]byte, writers)
	for i := range versions {
		versions[i] = bytes.Repeat([]byte{byte('a' + i)}, 64<<10+i*1001)
	}
	whole := func(b []byte) bool {
		for _, v := range versions {
			if bytes.Equal(b, v) {
				return true
			}
		}
		return false
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers+2)
	done := make(chan struct{})
	for i := range writers {
		wg.Go(func() {
			if _, err := storage.Put(t.Context(), s, "race", bytes.NewReader(versions[i])); err != nil {
				errs <- fmt.Errorf("writer %d: %w", i, err)
			}
		})
	}
	var readers sync.WaitGroup
	for range 2 {
		readers.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				r, err := s.Open(t.Context(), "race")
				if errors.Is(err, storage.ErrNotFound) {
					continue
				}
				if err != nil {
					errs <- fmt.Errorf("reader: %w", err)
					return
				}
				b, err := io.ReadAll(r)
				r.Close()
				if err != nil || !whole(b) {
					errs <- fmt.Errorf("reader saw %d bytes starting %.8q, err %v: not one whole version", len(b), b, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(done)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := Get(t, s, "race"); !whole(got) {
		t.Errorf("after concurrent uploads %q holds %d bytes starting %.8q, not one whole version", "race", len(got), got)
	}
	if l := list(t, s, ""); len(l) != 1 {
		t.Errorf("List after concurrent uploads = %v, want one key", l)
	}
}

// testLarge round-trips a large object (256 MiB for streaming drivers, 64
// MiB for the others) and compares SHA-256 hashes. For streaming drivers it
// also bounds the bytes allocated meanwhile, whatever the object's size.
func testLarge(t *testing.T, s storage.Store, streaming bool) {
	size := int64(64 << 20)
	if streaming {
		size = 256 << 20
	}
	// Total allocation, not just the live heap: a driver that buffered
	// the object would allocate hundreds of MiB. S3's SDK leaves some
	// garbage per request (about 50 KB per 5 MiB part), hence the slack.
	const bound = 16 << 20
	src := rand.NewChaCha8([32]byte{'c', 'a', 'c', 'h', 'e', 'd'})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	in := sha256.New()
	n, err := storage.Put(t.Context(), s, "large", io.TeeReader(io.LimitReader(src, size), in))
	if err != nil || n != size {
		t.Fatalf("Put: %d bytes, %v", n, err)
	}
	r, err := s.Open(t.Context(), "large")
	if err != nil {
		t.Fatal(err)
	}
	out := sha256.New()
	m, err := io.Copy(out, r)
	r.Close()
	if err != nil || m != size {
		t.Fatalf("reading back: %d bytes, %v", m, err)
	}
	runtime.ReadMemStats(&after)
	if !bytes.Equal(in.Sum(nil), out.Sum(nil)) {
		t.Errorf("a %d MiB object read back with another SHA-256", size>>20)
	}
	if info, err := s.Stat(t.Context(), "large"); err != nil || info.Size != size {
		t.Errorf("Stat = %+v, %v; want size %d", info, err, size)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("a %d MiB round trip allocated %d KiB", size>>20, alloc>>10)
	if streaming && alloc > bound {
		t.Errorf("a %d MiB round trip allocated %d MiB, want under %d MiB for a streaming driver", size>>20, alloc>>20, bound>>20)
	}
}
