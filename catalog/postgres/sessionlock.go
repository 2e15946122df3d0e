package postgres

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Named locks (the collector's) are session advisory locks: taken on a
// connection of their own (outside the pool, so that a pool of one is not
// starved) for as long as the lock is held.
// PostgreSQL drops them when the session ends: at once when the holding
// process dies (its socket closes), and within about a minute when its
// machine does (the session's TCP keepalives below). A lock whose holder
// is gone is therefore free at once, while one whose holder is alive but
// slow is never taken over. The locks table records who holds one and
// until when it was last renewed, for the record; it does not decide.

// namedLocks is the advisory lock namespace of named locks.
const namedLocks int32 = 0x636c636b

// sessionLocks are the named locks this Catalog holds.
type sessionLocks struct {
	mu   sync.Mutex
	held map[string]sessionLock
}

type sessionLock struct {
	holder string
	conn   *pgx.Conn
}

// keepalives make the server notice within about a minute that the
// machine holding a lock is gone.
const keepalives = `SET tcp_keepalives_idle = 20; SET tcp_keepalives_interval = 10; SET tcp_keepalives_count = 3`

// TryLock takes the named lock for holder when no other holder, in this
// process or another, has it; it renews it when holder has it already
// (failing if its session was lost). A holder that died without unlocking
// does not hold it. ttl is recorded in the locks table.
func (c *Catalog) TryLock(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if holder == "" || name == "" {
		return false, fmt.Errorf("%w: lock %q: empty name or holder", ErrInvalid, name)
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
		// The lock lives as long as its session: check that it does.
		if _, err := h.conn.Exec(ctx, `SELECT 1`); err != nil {
			delete(c.locks.held, name)
			h.conn.Close(context.WithoutCancel(ctx)) //nolint:errcheck // it is broken already
			return false, fmt.Errorf("postgres catalog: lock %s for %s: its session failed: %w", name, holder, err)
		}
		return true, recordLock(ctx, h.conn, name, holder, ttl)
	}
	conn, err := pgx.ConnectConfig(ctx, c.pool.Config().ConnConfig.Copy())
	if err != nil {
		return false, fmt.Errorf("postgres catalog: lock %s for %s: %w", name, holder, err)
	}
	var taken bool
	_, err = conn.Exec(ctx, keepalives)
	if err == nil {
		err = conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, $2)`, namedLocks, hashName(name)).Scan(&taken)
	}
	if err == nil && taken {
		// Whoever the table names is gone or unlocked: holder has it now.
		err = recordLock(ctx, conn, name, holder, ttl)
	}
	if err != nil || !taken {
		conn.Close(context.WithoutCancel(ctx)) //nolint:errcheck // ending the session drops its locks
		if err != nil {
			return false, fmt.Errorf("postgres catalog: lock %s for %s: %w", name, holder, err)
		}
		return false, nil
	}
	if c.locks.held == nil {
		c.locks.held = map[string]sessionLock{}
	}
	c.locks.held[name] = sessionLock{holder: holder, conn: conn}
	return true, nil
}

// recordLock records holder in the locks table until ttl from now, by the
// database server's clock, on the lock's own session.
func recordLock(ctx context.Context, conn *pgx.Conn, name, holder string, ttl time.Duration) error {
	_, err := conn.Exec(ctx, `INSERT INTO locks (name, holder, expires_at)
		VALUES ($1, $2, (floor(extract(epoch FROM statement_timestamp()) * 1000))::int8 + $3)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at`,
		name, holder, ttl.Milliseconds())
	return err
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
	_, err := h.conn.Exec(ctx, `DELETE FROM locks WHERE name = $1 AND holder = $2`, name, holder)
	if err == nil {
		// Released before the session ends, which the server notices a
		// moment after the connection closes.
		_, err = h.conn.Exec(ctx, `SELECT pg_advisory_unlock($1, $2)`, namedLocks, hashName(name))
	}
	if cerr := h.conn.Close(context.WithoutCancel(ctx)); err == nil { // ending the session drops the lock anyway
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("postgres catalog: unlock %s for %s: %w", name, holder, err)
	}
	return nil
}

// closeLocks drops every lock this Catalog holds, as a process that ends
// does: their sessions close.
func (c *Catalog) closeLocks() {
	c.locks.mu.Lock()
	defer c.locks.mu.Unlock()
	for name, h := range c.locks.held {
		h.conn.Close(context.Background()) //nolint:errcheck // ending the session drops the lock
		delete(c.locks.held, name)
	}
}
