package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/nar"
	"github.com/nix-cached/cached/nixhash"
	"github.com/nix-cached/cached/storage"
)

func sha(b []byte) string { return nixhash.NewSHA256(sha256.Sum256(b)).String() }

func unzstd(t *testing.T, b []byte) []byte {
	t.Helper()
	d, err := zstd.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	out, err := io.ReadAll(d)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// allCompressions are those Nix can write and ingest reads.
var allCompressions = []string{CompNone, CompXZ, CompZstd, CompBzip2, CompGzip, CompBrotli, CompLZ4, CompLzip, CompLZMA}

func TestNARStoredAsZstd(t *testing.T) {
	for _, comp := range allCompressions {
		t.Run(comp, func(t *testing.T) {
			f := newFixture(t, nil)
			plain := sampleNAR(t, comp)
			file := compress(t, comp, plain)
			name := nameFor(comp, file)
			n, err := f.ing.NAR(context.Background(), name, bytes.NewReader(file), int64(len(file)))
			if err != nil {
				t.Fatal(err)
			}
			if n.Compression != CompZstd || !strings.HasSuffix(n.Key, ".nar.zst") {
				t.Fatalf("stored as %s at %s", n.Compression, n.Key)
			}
			if n.NarHash != sha(plain) || n.NarSize != int64(len(plain)) {
				t.Fatalf("NarHash/NarSize %s/%d, want %s/%d", n.NarHash, n.NarSize, sha(plain), len(plain))
			}
			stored := readBlob(t, f.store, n.Key)
			if n.FileHash != sha(stored) || n.FileSize != int64(len(stored)) {
				t.Fatalf("FileHash/FileSize %s/%d do not describe the stored file", n.FileHash, n.FileSize)
			}
			if comp == CompZstd && !bytes.Equal(stored, file) {
				t.Fatal("a zstd upload was re-encoded instead of kept")
			}
			if !bytes.Equal(unzstd(t, stored), plain) {
				t.Fatal("the stored file does not decompress to the uploaded NAR")
			}
			var ls bytes.Buffer
			if err := nar.WriteListing(&ls, bytes.NewReader(plain)); err != nil {
				t.Fatal(err)
			}
			if got := readBlob(t, f.store, n.ListingKey); !bytes.Equal(got, ls.Bytes()) {
				t.Fatalf("listing %s, want %s", got, ls.Bytes())
			}
			for _, name := range []string{n.Key, "nar/" + name} {
				got, err := f.cat.LookupNAR(context.Background(), name)
				if err != nil || got.Key != n.Key {
					t.Fatalf("LookupNAR(%s) = %+v, %v", name, got, err)
				}
			}
		})
	}
}

func TestNARKeepMode(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.Mode = ModeKeep })
	plain := sampleNAR(t, "keep")
	file := compress(t, CompXZ, plain)
	name := nameFor(CompXZ, file)
	n, err := f.ing.NAR(context.Background(), name, bytes.NewReader(file), -1)
	if err != nil {
		t.Fatal(err)
	}
	if n.Key != "nar/"+name || n.Compression != CompXZ || n.FileHash != sha(file) {
		t.Fatalf("keep mode stored %+v", n)
	}
	if !bytes.Equal(readBlob(t, f.store, n.Key), file) {
		t.Fatal("keep mode changed the bytes")
	}
}

func TestNARRefused(t *testing.T) {
	plain := sampleNAR(t, "refused")
	xzFile := compress(t, CompXZ, plain)
	garbage := append(append([]byte{}, plain[:len(plain)-8]...), 1, 0, 0, 0, 0, 0, 0, 0)
	unsorted := makeNARRaw(t)
	dotZ := []byte("\x1f\x9d\x90nix-archive-1")
	lzipGood := compress(t, CompLzip, plain)
	lzipTrunc := lzipGood[:len(lzipGood)-10]
	lzipBadCRC := append([]byte{}, lzipGood...)
	lzipBadCRC[len(lzipBadCRC)-20] ^= 1
	lzipHuge := append([]byte("LZIP\x01\x1d"), lzipGood[6:]...)
	lzmaHuge := compress(t, CompLZMA, plain)
	binary.LittleEndian.PutUint32(lzmaHuge[1:5], 1<<30)
	cases := []struct {
		name   string
		upload string
		body   []byte
		size   int64
		want   error
	}{
		{"hash does not match name", nameFor(CompXZ, []byte("other")), xzFile, -1, ErrInvalid},
		{"not a NAR", nameFor(CompNone, []byte("hello world, not a nar")), []byte("hello world, not a nar"), -1, ErrUnsupported},
		{"corrupt NAR", nameFor(CompNone, garbage), garbage, -1, ErrInvalid},
		{"unsorted entries", nameFor(CompNone, unsorted), unsorted, -1, ErrInvalid},
		{"truncated xz", nameFor(CompXZ, xzFile[:len(xzFile)/2]), xzFile[:len(xzFile)/2], -1, ErrInvalid},
		{"truncated NAR", nameFor(CompNone, plain[:len(plain)-3]), plain[:len(plain)-3], -1, ErrInvalid},
		{"trailing bytes after xz", nameFor(CompXZ, append(xzFile, "junk"...)), append(append([]byte{}, xzFile...), "junk"...), -1, ErrInvalid},
		{"extension lies", strings.TrimSuffix(nameFor(CompXZ, xzFile), ".nar.xz") + ".nar.zst", xzFile, -1, ErrInvalid},
		{"short of Content-Length", nameFor(CompXZ, xzFile), xzFile, int64(len(xzFile) + 10), ErrInvalid},
		{"xz named brotli", strings.TrimSuffix(nameFor(CompXZ, xzFile), ".nar.xz") + ".nar.br", xzFile, -1, ErrInvalid},
		{"compress (.Z)", nameFor(CompNone, dotZ), dotZ, -1, ErrUnsupported},
		{"unknown extension", strings.TrimSuffix(nameFor(CompXZ, xzFile), ".nar.xz") + ".nar.lzo", xzFile, -1, ErrUnsupported},
		{"truncated lzip", nameFor(CompLzip, lzipTrunc), lzipTrunc, -1, ErrInvalid},
		{"lzip with a wrong CRC", nameFor(CompLzip, lzipBadCRC), lzipBadCRC, -1, ErrInvalid},
		{"lzip asking for a 512 MiB dictionary", nameFor(CompLzip, lzipHuge), lzipHuge, -1, ErrInvalid},
		{"lzma asking for a 1 GiB dictionary", nameFor(CompNone, lzmaHuge), lzmaHuge, -1, ErrInvalid},
		{"bad name", "../../etc/passwd", plain, -1, ErrInvalid},
		{"empty body", nameFor(CompNone, nil), nil, -1, ErrUnsupported},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, nil)
			_, err := f.ing.NAR(context.Background(), c.upload, bytes.NewReader(c.body), c.size)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			if k := keys(t, f.store); len(k) != 0 {
				t.Fatalf("a refused upload left blobs: %v", k)
			}
			if _, err := f.cat.LookupNAR(context.Background(), "nar/"+c.upload); !errors.Is(err, catalog.ErrNotFound) {
				t.Fatalf("a refused upload was recorded: %v", err)
			}
		})
	}
}

// makeNARRaw writes, by hand, a directory whose entries are out of order.
func makeNARRaw(t *testing.T) []byte {
	var b bytes.Buffer
	str := func(s string) {
		var n [8]byte
		n[0] = byte(len(s))
		b.Write(n[:])
		b.WriteString(s)
		b.Write(make([]byte, (8-len(s)%8)%8))
	}
	str("nix-archive-1")
	for _, s := range []string{"(", "type", "directory"} {
		str(s)
	}
	for _, name := range []string{"b", "a"} {
		for _, s := range []string{"entry", "(", "name", name, "node", "(", "type", "regular", "contents", "", ")", ")"} {
			str(s)
		}
	}
	str(")")
	return b.Bytes()
}

// failingStore injects write failures into a real store.
type failingStore struct {
	storage.Store
	fail error
}

type failingUpload struct {
	storage.Upload
	fail error
}

func (s failingStore) Create(ctx context.Context) (storage.Upload, error) {
	u, err := s.Store.Create(ctx)
	return failingUpload{u, s.fail}, err
}

func (u failingUpload) Write(p []byte) (int, error) { return 0, u.fail }

func TestNARStorageFailureIsNotTheClientsFault(t *testing.T) {
	f := newFixture(t, nil)
	boom := errors.New("disk on fire")
	ing, err := New(failingStore{f.store, boom}, f.cat, Options{Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	file := compress(t, CompXZ, sampleNAR(t, "fail"))
	_, err = ing.NAR(context.Background(), nameFor(CompXZ, file), bytes.NewReader(file), -1)
	if !errors.Is(err, boom) || errors.Is(err, ErrInvalid) {
		t.Fatalf("got %v, want the storage error and not ErrInvalid", err)
	}
}

// commitFailingStore fails the Commit of every key under prefix.
type commitFailingStore struct {
	storage.Store
	prefix string
	fail   error
}

type commitFailingUpload struct {
	storage.Upload
	prefix string
	fail   error
}

func (s commitFailingStore) Create(ctx context.Context) (storage.Upload, error) {
	u, err := s.Store.Create(ctx)
	return commitFailingUpload{u, s.prefix, s.fail}, err
}

func (u commitFailingUpload) Commit(ctx context.Context, key string) error {
	if strings.HasPrefix(key, u.prefix) {
		u.Upload.Abort() //nolint:errcheck // the failure is the point
		return u.fail
	}
	return u.Upload.Commit(ctx, key)
}

// TestNARCommitFailure fails the commit of the NAR or of its listing (the
// two are committed side by side): the upload fails with that error, and
// no ready NAR is recorded, so no narinfo can name it.
func TestNARCommitFailure(t *testing.T) {
	for _, prefix := range []string{"nar/", "ls/"} {
		t.Run(prefix, func(t *testing.T) {
			f := newFixture(t, nil)
			boom := errors.New("rename failed")
			ing, err := New(commitFailingStore{f.store, prefix, boom}, f.cat, Options{Now: f.clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			file := compress(t, CompXZ, sampleNAR(t, "commit-"+prefix))
			name := nameFor(CompXZ, file)
			_, err = ing.NAR(context.Background(), name, bytes.NewReader(file), int64(len(file)))
			if !errors.Is(err, boom) || errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want the commit error and not ErrInvalid", err)
			}
			if _, err := f.cat.LookupNAR(context.Background(), "nar/"+name); !errors.Is(err, catalog.ErrNotFound) {
				t.Fatalf("LookupNAR after a failed commit: %v, want ErrNotFound", err)
			}
		})
	}
}

// failingReader is a client that hangs up halfway.
type failingReader struct {
	r io.Reader
	n int
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, io.ErrUnexpectedEOF
	}
	if len(p) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

func TestNARClientHangsUp(t *testing.T) {
	f := newFixture(t, nil)
	file := compress(t, CompXZ, sampleNAR(t, "hangup"))
	_, err := f.ing.NAR(context.Background(), nameFor(CompXZ, file), &failingReader{bytes.NewReader(file), len(file) / 2}, int64(len(file)))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "reading the body") {
		t.Fatalf("got %v", err)
	}
	if k := keys(t, f.store); len(k) != 0 {
		t.Fatalf("left blobs: %v", k)
	}
}

func TestNARSameContentsTwice(t *testing.T) {
	f := newFixture(t, nil)
	plain := sampleNAR(t, "twice")
	first, second := compress(t, CompXZ, plain), compress(t, CompBzip2, plain)
	a, err := f.ing.NAR(context.Background(), nameFor(CompXZ, first), bytes.NewReader(first), -1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.ing.NAR(context.Background(), nameFor(CompBzip2, second), bytes.NewReader(second), -1)
	if err != nil {
		t.Fatal(err)
	}
	if a.Key != b.Key || a.ListingKey != b.ListingKey {
		t.Fatalf("the same NAR stored twice: %s and %s", a.Key, b.Key)
	}
	if n := len(keys(t, f.store)); n != 2 {
		t.Fatalf("%d blobs, want one NAR and one listing", n)
	}
}

// TestDecodeContentEncoding undoes every Content-Encoding Nix ≥ 2.32 can
// put on a narinfo, listing or log upload, and refuses others by name.
func TestDecodeContentEncoding(t *testing.T) {
	plain := []byte("StorePath: /nix/store/x\nsome text, some text, some text\n")
	for _, enc := range append([]string{"identity", "", "x-gzip", "BR"}, allCompressions...) {
		comp := strings.ToLower(enc)
		switch comp {
		case "identity", "":
			comp = CompNone
		case "x-gzip":
			comp = CompGzip
		}
		r, done, err := DecodeContentEncoding(enc, bytes.NewReader(compress(t, comp, plain)))
		if err != nil {
			t.Fatalf("%q: %v", enc, err)
		}
		got, err := io.ReadAll(r)
		done()
		if err != nil || !bytes.Equal(got, plain) {
			t.Errorf("%q: decoded %q, %v", enc, got, err)
		}
	}
	for _, enc := range []string{"compress", "lzop", "deflate"} {
		_, _, err := DecodeContentEncoding(enc, bytes.NewReader(plain))
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), enc) {
			t.Errorf("%q: %v, want ErrUnsupported naming it", enc, err)
		}
	}
}
