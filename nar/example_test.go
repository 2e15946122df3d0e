package nar_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/nix-cached/cached/nar"
)

// Validate an uploaded NAR while hashing its raw bytes.
func ExampleReader() {
	f, err := os.Open("testdata/tree.nar")
	if err != nil {
		panic(err)
	}
	defer f.Close()
	hash := sha256.New()
	r := nar.NewReader(io.TeeReader(f, hash))
	files := 0
	for {
		h, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if errors.Is(err, nar.ErrInvalid) {
			fmt.Println("reject with 400:", err)
			return
		}
		if err != nil {
			fmt.Println("fail with 500:", err)
			return
		}
		if h.Type == nar.TypeRegular {
			files++
		}
	}
	// NarSize and NarHash agree with the narinfo nix copy wrote for this path.
	fmt.Printf("%d regular files, NarSize %d, NarHash sha256:%x\n", files, r.Offset(), hash.Sum(nil))
	// Output: 17 regular files, NarSize 5016, NarHash sha256:c5a939b2b3fb1fe7a4ab6dabba240a723f076eb7d0e6d1395ec08673db6b4509
}
