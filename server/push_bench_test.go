package server

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/nix-cached/cached/narinfo"
	"github.com/nix-cached/cached/nixbase32"
	"github.com/nix-cached/cached/nixhash"
)

// benchPush is a path as nix copy --to uploads it: a zstd NAR and its
// narinfo.
type benchPush struct {
	hash, narName string
	nar, narinfo  []byte
}

// benchPushes makes n paths of size bytes each; chained, every one
// references the one before.
func benchPushes(b *testing.B, n, size int, chained bool) []benchPush {
	b.Helper()
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		b.Fatal(err)
	}
	out := make([]benchPush, n)
	rng := rand.NewChaCha8([32]byte{2})
	prev := ""
	for i := range out {
		var plain bytes.Buffer
		// Half random, half text: it compresses about as well as a
		// store path's files.
		noise := make([]byte, size/2)
		rng.Read(noise)
		text := string(noise) + strings.Repeat(fmt.Sprintf("push bench path %d\n", i), size/32+1)[:size-len(noise)]
		if err := writeNAR(&plain, strings.NewReader(text), int64(len(text))); err != nil {
			b.Fatal(err)
		}
		file := enc.EncodeAll(plain.Bytes(), nil)
		fsum, nsum := sha256.Sum256(file), sha256.Sum256(plain.Bytes())
		var raw [20]byte
		copy(raw[:], nsum[:])
		hash := nixbase32.EncodeToString(raw[:])
		base := fmt.Sprintf("%s-push-%d", hash, i)
		name := nixbase32.EncodeToString(fsum[:]) + ".nar.zst"
		ni := narinfo.NarInfo{
			StorePath: "/nix/store/" + base, URL: "nar/" + name, Compression: "zstd",
			FileHash: nixhash.NewSHA256(fsum), FileSize: uint64(len(file)),
			NarHash: nixhash.NewSHA256(nsum), NarSize: uint64(plain.Len()),
		}
		if chained && prev != "" {
			ni.References = []string{prev}
		}
		out[i] = benchPush{hash: hash, narName: name, nar: file, narinfo: []byte(ni.String())}
		prev = base
	}
	return out
}

// put sends one upload with the push token and fails unless it is stored.
func (e *benchEnv) put(b *testing.B, c *http.Client, path string, body []byte) {
	req, err := http.NewRequest(http.MethodPut, e.ts.URL+path, bytes.NewReader(body))
	if err != nil {
		b.Error(err)
		return
	}
	req.SetBasicAuth("nix", pushToken)
	resp, err := c.Do(req)
	if err != nil {
		b.Error(err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b.Errorf("PUT %s: %d", path, resp.StatusCode)
	}
}

// BenchmarkPush pushes paths of 64 KiB as nix copy --to does, the NAR
// then the narinfo: a chain, path after path (Nix 2.8), or independent
// paths over several connections at once (Nix 2.34 uploads in parallel).
// Each op is one path, durable when its narinfo PUT is answered.
func BenchmarkPush(b *testing.B) {
	for _, conns := range []int{1, 8} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			e := newBenchEnv(b)
			paths := benchPushes(b, b.N, 64<<10, conns == 1)
			c := e.client(b, conns)
			work := make(chan benchPush)
			var wg sync.WaitGroup
			b.ResetTimer()
			for range conns {
				wg.Go(func() {
					for p := range work {
						e.put(b, c, "/nar/"+p.narName, p.nar)
						e.put(b, c, "/"+p.hash+".narinfo", p.narinfo)
					}
				})
			}
			for _, p := range paths {
				work <- p
			}
			close(work)
			wg.Wait()
		})
	}
}
