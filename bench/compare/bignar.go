package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/nix-cached/cached/nar"
	"github.com/nix-cached/cached/nixhash"
)

// bigNAR is a NAR of one file of random bytes, which zstd cannot shrink.
type bigNAR struct {
	path string
	hash string // nix32 SHA-256
	size int64
}

// makeBigNAR writes a NAR holding size bytes of random data.
func makeBigNAR(dir string, size int64) (bigNAR, error) {
	path := filepath.Join(dir, "big.nar")
	f, err := os.Create(path)
	if err != nil {
		return bigNAR{}, err
	}
	defer f.Close()
	h := nixhash.NewSHA256Writer()
	buf := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	w := nar.NewWriter(buf)
	if err := w.WriteHeader(&nar.Header{Path: "/", Type: nar.TypeRegular, Size: size}); err != nil {
		return bigNAR{}, err
	}
	if _, err := io.CopyN(w, rand.Reader, size); err != nil {
		return bigNAR{}, err
	}
	if err := w.Close(); err != nil {
		return bigNAR{}, err
	}
	if err := buf.Flush(); err != nil {
		return bigNAR{}, err
	}
	return bigNAR{path: path, hash: h.Sum().Nix32(), size: h.Size()}, f.Close()
}

// memory is cached's peak RSS while one big NAR goes in and out.
type memory struct {
	PushMiB, Down16MiB float64
	PushMBps           float64
	Down16MBps         float64
}

// measureMemory pushes n to srv uncompressed, as `nix copy
// --to URL?compression=none` does (cached verifies it and transcodes it
// to zstd on the way in), publishes a narinfo for it, and downloads the
// stored file with 16 clients at once, recording the server's peak RSS
// in each phase.
func (b *bench) measureMemory(ctx context.Context, srv *server, n bigNAR) (memory, error) {
	var m memory
	if err := srv.resetPeak(); err != nil {
		return m, err
	}
	f, err := os.Open(n.path)
	if err != nil {
		return m, err
	}
	defer f.Close()
	t := b.clock()
	if err := b.put(ctx, srv.URL+"/nar/"+n.hash+".nar", "application/x-nix-nar", f, n.size); err != nil {
		return m, err
	}
	m.PushMBps = float64(n.size) / t().Seconds() / 1e6
	if m.PushMiB, err = srv.peakMiB(); err != nil {
		return m, err
	}
	hashPart := n.hash[:32]
	info := fmt.Sprintf("StorePath: /nix/store/%s-big\nURL: nar/%s.nar\nCompression: none\n"+
		"NarHash: sha256:%s\nNarSize: %d\nReferences: \n", hashPart, n.hash, n.hash, n.size)
	if err := b.put(ctx, srv.URL+"/"+hashPart+".narinfo", "text/x-nix-narinfo",
		strings.NewReader(info), int64(len(info))); err != nil {
		return m, err
	}
	url, err := narURL(ctx, srv.URL, hashPart)
	if err != nil {
		return m, err
	}
	if err := srv.resetPeak(); err != nil {
		return m, err
	}
	t = b.clock()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var total int64
	var errs []error
	for range 16 {
		wg.Go(func() {
			n, err := get(ctx, url)
			mu.Lock()
			defer mu.Unlock()
			total += n
			errs = append(errs, err)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return m, err
	}
	m.Down16MBps = float64(total) / t().Seconds() / 1e6
	m.Down16MiB, err = srv.peakMiB()
	return m, err
}

// put uploads body with the push token.
func (b *bench) put(ctx context.Context, url, ctype string, body io.Reader, size int64) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, body)
	if err != nil {
		return err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Authorization", "Bearer "+b.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("PUT %s: %s: %s", url, resp.Status, msg)
	}
	return nil
}

// get downloads url and returns how many bytes came.
func get(ctx context.Context, url string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return io.Copy(io.Discard, resp.Body)
}

// narURL reads the URL of a path's NAR from the server's narinfo.
func narURL(ctx context.Context, base, hashPart string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/"+hashPart+".narinfo", nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s.narinfo: %s %v", hashPart, resp.Status, err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, "URL: "); ok {
			return base + "/" + rest, nil
		}
	}
	return "", fmt.Errorf("%s.narinfo has no URL", hashPart)
}
