package postgres

import (
	"context"
	"errors"
	"hash/fnv"
	"slices"

	"github.com/jackc/pgx/v5"
)

// Advisory lock namespaces (the first key of PostgreSQL's two-key
// advisory locks; the second is a hash of the name). A hash collision only
// makes two unrelated calls wait for each other.
const (
	blobLocks int32 = 0x63626c62 // blob keys: NAR Keys and ListingKeys
	pinLocks  int32 = 0x6370696e // pin names
)

// txn is a write transaction with the advisory locks it took.
type txn struct {
	pgx.Tx
	held map[lockID]bool
}

// lockID names one advisory lock.
type lockID struct {
	space  int32
	id     int32
	shared bool
}

// hashName is the second key of the advisory lock of name.
func hashName(name string) int32 {
	h := fnv.New32a()
	h.Write([]byte(name)) //nolint:errcheck // hashes never fail
	return int32(h.Sum32())
}

// lock takes, until the transaction ends, the advisory locks of names in
// space ("" is skipped), in ascending order of their keys so that two
// transactions taking several do not deadlock; shared locks exclude only
// exclusive ones.
func (t *txn) lock(ctx context.Context, space int32, shared bool, names ...string) error {
	b := &pgx.Batch{}
	locked := t.queueLock(b, space, shared, names...)
	if b.Len() == 0 {
		return nil
	}
	if err := t.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	locked()
	return nil
}

// queueLock queues on b the statement that takes the locks lock takes, if
// any is not held yet; the caller calls the function returned once b has
// run.
func (t *txn) queueLock(b *pgx.Batch, space int32, shared bool, names ...string) func() {
	var ids []int32
	for _, n := range names {
		if n == "" {
			continue
		}
		id := hashName(n)
		if !t.held[lockID{space, id, shared}] && !t.held[lockID{space, id, false}] {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return func() {}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	fn := "pg_advisory_xact_lock"
	if shared {
		fn = "pg_advisory_xact_lock_shared"
	}
	b.Queue(`SELECT `+fn+`($1::int4, id) FROM unnest($2::int4[]) AS id`, space, ids)
	return func() {
		if t.held == nil {
			t.held = map[lockID]bool{}
		}
		for _, id := range ids {
			t.held[lockID{space, id, shared}] = true
		}
	}
}

// lockBlobs takes the exclusive locks of blob keys.
func (t *txn) lockBlobs(ctx context.Context, keys ...string) error {
	return t.lock(ctx, blobLocks, false, keys...)
}

// lockNAR takes the exclusive locks of the NAR record with this key and of
// its listing, and returns the record's id and listing key (0 and "" when
// there is none). Its listing cannot change once its key is locked.
func (t *txn) lockNAR(ctx context.Context, key string) (int64, string, error) {
	var id int64
	var listing string
	for {
		err := t.QueryRow(ctx, `SELECT id, COALESCE(listing_key, '') FROM nars WHERE key = $1`, key).
			Scan(&id, &listing)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			id, listing = 0, ""
		case err != nil:
			return 0, "", err
		}
		if t.held[lockID{blobLocks, hashName(key), false}] &&
			(listing == "" || t.held[lockID{blobLocks, hashName(listing), false}]) {
			return id, listing, nil
		}
		// Read again once locked: the record may have changed meanwhile.
		if err := t.lockBlobs(ctx, key, listing); err != nil {
			return 0, "", err
		}
	}
}

// lazyCommit lets the transaction commit without waiting for its WAL to
// reach the disk, for records that need not survive a crash of the
// database by themselves (BeginNAR, PutNAR): the Publish that claims the
// NAR commits synchronously, which flushes the WAL up to it and so makes
// them durable too. A crash in between loses what no client was
// promised: Nix uploads the NAR again with its narinfo.
func (t *txn) lazyCommit(ctx context.Context) error {
	_, err := t.Exec(ctx, `SET LOCAL synchronous_commit = off`)
	return err
}
