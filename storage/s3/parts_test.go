package s3

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// TestPartSchedule checks that the part sizes fit S3's limits and that
// 10,000 parts hold at least 100 GiB for every allowed first part size.
func TestPartSchedule(t *testing.T) {
	const GiB = 1 << 30
	tests := []struct {
		first   int64
		uniform bool
		atLeast int64 // bytes 10,000 parts must hold
	}{
		{minPartSize, false, 100 * GiB},
		{defaultPartSize, false, 100 * GiB},
		{64 << 20, false, 100 * GiB},
		{maxPartSize, false, 100 * GiB},
		{minPartSize, true, 10000 * minPartSize},
		{defaultPartSize, true, 10000 * defaultPartSize},
	}
	for _, tt := range tests {
		var total, prev int64
		for n := 1; n <= maxParts; n++ {
			size := partSize(tt.first, n, tt.uniform)
			if size < minPartSize || size > maxPartSize {
				t.Fatalf("partSize(%d, %d, %v) = %d, outside [5 MiB, 5 GiB]", tt.first, n, tt.uniform, size)
			}
			if size < prev || tt.uniform && size != tt.first {
				t.Fatalf("partSize(%d, %d, %v) = %d after %d", tt.first, n, tt.uniform, size, prev)
			}
			total += size
			prev = size
		}
		if total < tt.atLeast {
			t.Errorf("10,000 parts starting at %d bytes (uniform %v) hold %d GiB, want at least %d GiB",
				tt.first, tt.uniform, total/GiB, tt.atLeast/GiB)
		}
		t.Logf("first part %d MiB, uniform %v: 10,000 parts hold %d GiB, the last is %d MiB",
			tt.first>>20, tt.uniform, total/GiB, prev>>20)
	}
	// The 100 GiB object, part by part, with the default first part.
	var total int64
	n := 0
	for total < 100*GiB {
		n++
		total += partSize(defaultPartSize, n, false)
	}
	if n > maxParts {
		t.Errorf("a 100 GiB object takes %d parts", n)
	}
	t.Logf("a 100 GiB object takes %d parts of up to %d MiB", n, partSize(defaultPartSize, n, false)>>20)
}

// TestBody reads a chunked body every way the SDK and net/http do.
func TestBody(t *testing.T) {
	chunks := [][]byte{[]byte("hello, "), []byte("chunked"), []byte(" "), []byte("world")}
	whole := bytes.Join(chunks, nil)
	size := int64(len(whole))
	b := newBody(chunks, size)

	got, err := io.ReadAll(b)
	if err != nil || !bytes.Equal(got, whole) {
		t.Fatalf("ReadAll = %q, %v; want %q", got, err, whole)
	}
	steps := []struct {
		off    int64
		whence int
		pos    int64 // -1 for an error
	}{
		{0, io.SeekStart, 0},
		{7, io.SeekStart, 7},
		{3, io.SeekCurrent, 13}, // after reading 3 bytes at 7
		{-5, io.SeekEnd, size - 5},
		{0, io.SeekEnd, size},
		{14, io.SeekStart, 14}, // a chunk boundary
		{size + 1, io.SeekStart, -1},
		{-1, io.SeekStart, -1},
	}
	for _, st := range steps {
		pos, err := b.Seek(st.off, st.whence)
		if st.pos < 0 {
			if err == nil {
				t.Errorf("Seek(%d, %d) = %d, want an error", st.off, st.whence, pos)
			}
			continue
		}
		if err != nil || pos != st.pos {
			t.Fatalf("Seek(%d, %d) = %d, %v; want %d", st.off, st.whence, pos, err, st.pos)
		}
		var w bytes.Buffer
		if n, err := b.WriteTo(&w); err != nil || n != size-pos || !bytes.Equal(w.Bytes(), whole[pos:]) {
			t.Errorf("WriteTo after Seek to %d = %d, %v, %q; want %q", pos, n, err, w.Bytes(), whole[pos:])
		}
		b.Seek(pos, io.SeekStart)
		one := make([]byte, 3)
		n, err := b.Read(one)
		want := whole[pos:min(pos+3, size)]
		if pos == size {
			if n != 0 || err != io.EOF {
				t.Errorf("Read at the end = %d, %v; want 0, EOF", n, err)
			}
		} else if err != nil || !bytes.Equal(one[:n], want) {
			t.Errorf("Read after Seek to %d = %q, %v; want %q", pos, one[:n], err, want)
		}
	}

	b.Seek(0, io.SeekStart)
	b.detach()
	if n, err := b.Read(make([]byte, 4)); n != 0 || !errors.Is(err, errDetached) {
		t.Errorf("Read after detach = %d, %v; want errDetached", n, err)
	}
	if n, err := b.WriteTo(io.Discard); n != 0 || !errors.Is(err, errDetached) {
		t.Errorf("WriteTo after detach = %d, %v; want errDetached", n, err)
	}
}
