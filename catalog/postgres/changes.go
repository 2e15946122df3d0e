package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nix-cached/cached/catalog"
	"github.com/nix-cached/cached/catalog/internal/deletion"
)

// queueChanges queues on b, as the last statement of a write transaction,
// the change log entries of hashParts.
//
// Followers of the log read it by seq and remember the highest they saw,
// so a change must never commit with a seq below one already visible.
// Identity values are drawn when a transaction inserts, not when it
// commits: two writers could draw 5 and 6, the second commit first, a
// follower read 6, and 5 would appear behind it. So
// record_narinfo_changes (migration 0002) first takes LOCK TABLE
// narinfo_changes IN EXCLUSIVE MODE, which conflicts with itself (writers
// of the log take turns from the lock to their commit) but not with the
// ACCESS SHARE of plain SELECTs (Changes and LastChange never wait).
// PostgreSQL makes a commit visible before it releases the transaction's
// locks, so the next writer draws its seq, a higher one, only once the
// previous commit is visible: a reader that sees seq n already sees every
// lower seq that will ever commit.
//
// The lock must be the last one the transaction takes, and it is taken
// only to insert the log rows and commit. A transaction holding it then
// never waits for another lock: the insert has no foreign keys, its seq
// collides with no other, and nothing is deferred to the commit. A writer
// waiting for it may hold path row locks and blob advisory locks (locks.go,
// delete.go), but since the holder waits for none of them no wait cycle
// passes through this lock, and the existing lock order is unchanged. Were
// it taken earlier, a writer holding it could wait for a path row or blob
// lock held by another writer queued behind it: a deadlock. It also keeps
// the log's writers serialised for as short a time as possible: one round
// trip and the commit.
//
// The INSERT must not even be parsed before the lock is held. Parsing it
// takes ROW EXCLUSIVE on the table until the transaction ends, which the
// EXCLUSIVE lock conflicts with, and pgx prepares every new statement of a
// batch before it runs the first: two transactions that had both prepared
// the INSERT deadlocked, each waiting for EXCLUSIVE against the other's
// ROW EXCLUSIVE (TestChangesFollowedDuringWrites saw it). So no statement
// sent here names the table: the PL/pgSQL function plans its INSERT only
// after its LOCK has run.
//
// PruneChanges's DELETE takes ROW EXCLUSIVE and nothing else, so it only
// waits its turn. A vacuum of the table holds SHARE UPDATE EXCLUSIVE,
// which the lock waits for: writers stall while one runs, though
// PostgreSQL cancels an autovacuum that blocks a lock for deadlock_timeout.
func queueChanges(b *pgx.Batch, hashParts []string) {
	b.Queue(`SELECT record_narinfo_changes($1::text[], $2)`, hashParts, time.Now().UnixMilli())
}

// Changes returns up to limit entries of the change log with Seq > after,
// in Seq order: one statement, which no writer blocks.
func (c *Catalog) Changes(ctx context.Context, after int64, limit int) ([]catalog.Change, error) {
	var out []catalog.Change
	err := c.query(ctx, func() error {
		rows, err := c.pool.Query(ctx, `SELECT seq, hash_part FROM narinfo_changes
			WHERE seq > $1 ORDER BY seq LIMIT $2`, after, limit)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (catalog.Change, error) {
			var ch catalog.Change
			err := r.Scan(&ch.Seq, &ch.HashPart)
			return ch, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres catalog: changes after %d: %w", after, err)
	}
	return out, nil
}

// LastChange returns the highest Seq of the change log, 0 when it is
// empty.
func (c *Catalog) LastChange(ctx context.Context) (int64, error) {
	var seq int64
	err := c.query(ctx, func() error {
		return c.pool.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM narinfo_changes`).Scan(&seq)
	})
	if err != nil {
		return 0, fmt.Errorf("postgres catalog: last change: %w", err)
	}
	return seq, nil
}

// PruneChanges removes the change log entries recorded before before and
// returns how many went.
func (c *Catalog) PruneChanges(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := c.write(ctx, func(t *txn) error {
		tag, err := t.Exec(ctx, `DELETE FROM narinfo_changes WHERE at < $1`, before.UnixMilli())
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("postgres catalog: prune changes before %s: %w", before.Format(deletion.TimeFormat), err)
	}
	return n, nil
}
