-- 0004: fewer pages written per path a collection deletes. Deleting 256
-- scattered paths of a million dirtied about 15 pages each, every one
-- written to the WAL and again at the checkpoint.

-- refs clustered by referrer: a path's references share a page of the
-- table itself, with no rowid table and primary-key index beside it.
CREATE TABLE refs_clustered (
    referrer  TEXT NOT NULL REFERENCES paths (hash_part) ON DELETE CASCADE,
    reference TEXT NOT NULL,
    PRIMARY KEY (referrer, reference)
) WITHOUT ROWID;
INSERT INTO refs_clustered (referrer, reference) SELECT referrer, reference FROM refs;
DROP TABLE refs;
ALTER TABLE refs_clustered RENAME TO refs;
CREATE INDEX refs_reference ON refs (reference, referrer);

-- Almost every NAR is ready, and marking one deleting moved its entry
-- across an index of all of them. Only the others are indexed now; a
-- query must say state <> 'ready' for SQLite to use it.
DROP INDEX nars_state;
CREATE INDEX nars_unready ON nars (state) WHERE state <> 'ready';

-- Most NARs have no listing (Nix writes one only with write-nar-listing),
-- and every deletion touched a page among the NULLs.
DROP INDEX nars_listing_key;
CREATE INDEX nars_listing_key ON nars (listing_key) WHERE listing_key IS NOT NULL;
