package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Named locks (the collector's) are file locks: flock(2) on a file beside
// the database, held by an open file for as long as the lock is. The
// kernel drops a file lock when its process dies, however it dies, so a
// lock whose holder was killed is free at once; and every process that
// opens this database is on this machine (SQLite needs a local file
// system). The locks table records who holds one and since when, for the
// record; it does not decide.

// fileLocks are the named locks this Catalog holds.
type fileLocks struct {
	mu   sync.Mutex
	held map[string]heldLock
}

type heldLock struct {
	holder string
	file   *os.File
}

// lockFile is the file whose flock is the named lock.
func (c *Catalog) lockFile(name string) string { return c.path + ".lock-" + name }

// TryLock takes the named lock for holder when no other holder, in this
// process or another, has it; it renews it when holder has it already. A
// holder that died without unlocking does not hold it. ttl is recorded in
// the locks table.
func (c *Catalog) TryLock(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if holder == "" || name == "" || strings.ContainsAny(name, "/\x00") {
		return false, fmt.Errorf("%w: lock %q for %q: want a name without slashes and a holder", ErrInvalid, name, holder)
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	c.locks.mu.Lock()
	defer c.locks.mu.Unlock()
	if h, ok := c.locks.held[name]; ok {
		if h.holder != holder {
			return false, nil
		}
		return true, c.recordLock(ctx, name, holder, ttl)
	}
	f, err := os.OpenFile(c.lockFile(name), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return false, fmt.Errorf("sqlite catalog: lock %s: %w", name, err)
	}
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		f.Close()
		return false, nil
	}
	if err == nil {
		// Whoever the table names is gone or unlocked: holder has it now.
		err = c.recordLock(ctx, name, holder, ttl)
	}
	if err != nil {
		f.Close() // drops the flock
		return false, fmt.Errorf("sqlite catalog: lock %s for %s: %w", name, holder, err)
	}
	if c.locks.held == nil {
		c.locks.held = map[string]heldLock{}
	}
	c.locks.held[name] = heldLock{holder: holder, file: f}
	return true, nil
}

// recordLock records holder in the locks table until ttl from now.
func (c *Catalog) recordLock(ctx context.Context, name, holder string, ttl time.Duration) error {
	return c.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO locks (name, holder, expires_at) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at`,
			name, holder, time.Now().Add(ttl).UnixMilli())
		return err
	})
}

// Unlock releases the named lock if holder has it; otherwise it does
// nothing.
func (c *Catalog) Unlock(ctx context.Context, name, holder string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.locks.mu.Lock()
	defer c.locks.mu.Unlock()
	h, ok := c.locks.held[name]
	if !ok || h.holder != holder {
		return nil
	}
	delete(c.locks.held, name)
	err := c.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM locks WHERE name = ? AND holder = ?`, name, holder)
		return err
	})
	if cerr := h.file.Close(); err == nil && cerr != nil { // drops the flock
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sqlite catalog: unlock %s for %s: %w", name, holder, err)
	}
	return nil
}

// closeLocks drops every lock this Catalog holds, as a process that ends
// does.
func (c *Catalog) closeLocks() {
	c.locks.mu.Lock()
	defer c.locks.mu.Unlock()
	for name, h := range c.locks.held {
		h.file.Close()
		delete(c.locks.held, name)
	}
}
