// Package logbuf batches log output: a request log line per request is
// one write system call each when written straight to stderr, a real
// share of the CPU a narinfo hit costs. A Writer collects lines and
// writes them out together, at most every interval or when a batch fills
// up, so a process killed with SIGKILL loses at most the last interval of
// log lines, never a partial one.
package logbuf

import (
	"io"
	"sync"
	"time"
)

// maxBatch is the size at which a batch is written at once.
const maxBatch = 64 << 10

// Writer buffers writes to an underlying writer. Each Write is kept whole:
// slog handlers write one record per call. Safe for concurrent use.
type Writer struct {
	mu    sync.Mutex // guards buf, spare and err
	out   sync.Mutex // held while a batch is written, in order
	dst   io.Writer
	buf   []byte // the batch being filled
	spare []byte // the batch last written, reused
	err   error  // the first write error, returned by later Writes
	stop  chan struct{}
	done  chan struct{}
}

// New returns a Writer that flushes to dst every interval (and whenever
// a batch reaches 64 KiB). Close flushes and stops it.
func New(dst io.Writer, interval time.Duration) *Writer {
	w := &Writer{dst: dst, buf: make([]byte, 0, maxBatch), spare: make([]byte, 0, maxBatch),
		stop: make(chan struct{}), done: make(chan struct{})}
	go w.loop(interval)
	return w
}

func (w *Writer) loop(interval time.Duration) {
	defer close(w.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			w.Flush()
		case <-w.stop:
			return
		}
	}
}

// Write appends p to the batch, writing the batch out first if p would
// overflow it.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return 0, err
	}
	if len(w.buf)+len(p) > maxBatch && len(w.buf) > 0 {
		w.mu.Unlock()
		if err := w.Flush(); err != nil {
			return 0, err
		}
		w.mu.Lock()
	}
	w.buf = append(w.buf, p...)
	w.mu.Unlock()
	return len(p), nil
}

// Flush writes out the batch. Writers are not held up while it does: the
// batch is swapped for an empty one first.
func (w *Writer) Flush() error {
	w.out.Lock()
	defer w.out.Unlock()
	w.mu.Lock()
	batch := w.buf
	w.buf, w.spare = w.spare[:0], nil
	err := w.err
	w.mu.Unlock()
	if len(batch) > 0 && err == nil {
		_, err = w.dst.Write(batch)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.spare = batch[:0]
	if w.err == nil {
		w.err = err
	}
	return w.err
}

// Close stops the timer and writes out what is left.
func (w *Writer) Close() error {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
	return w.Flush()
}
