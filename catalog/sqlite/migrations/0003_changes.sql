-- 0003: the narinfo change log. Times are integer Unix milliseconds (UTC),
-- as in 0001.

-- One row per path published, replaced or deleted, in the same transaction
-- as the change: processes that keep narinfos in memory follow it by seq.
-- SQLite has one writer at a time, so seq order is commit order.
-- AUTOINCREMENT: a seq is never handed out twice, even once pruning has
-- emptied the table, so a follower never takes a new change for one it
-- has seen.
CREATE TABLE narinfo_changes (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    hash_part TEXT    NOT NULL,
    at        INTEGER NOT NULL
);
