-- 0002: the narinfo change log. Times are bigint Unix milliseconds (UTC),
-- as in 0001.

-- One row per path published, replaced or deleted, written in the same
-- transaction as the change: processes that keep narinfos in memory follow
-- it by seq. An identity never hands out a value twice, even once pruning
-- has emptied the table.
CREATE TABLE narinfo_changes (
    seq       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hash_part text   COLLATE "C" NOT NULL,
    at        bigint NOT NULL
);

-- The only writer of narinfo_changes, called as the last statement of a
-- transaction before its commit. Identity values are handed out in the
-- order transactions insert, not the order they commit, so it takes a
-- self-conflicting lock, held to the commit, before it inserts: seq order
-- is then commit order (see changes.go). It is a function, and PL/pgSQL,
-- so that the INSERT is parsed only once the lock is held: parsing an
-- INSERT already takes ROW EXCLUSIVE on its table, which the EXCLUSIVE
-- lock of another transaction waits for, and pgx parses every statement
-- of a pipelined batch before it runs the first one.
CREATE FUNCTION record_narinfo_changes(hash_parts text[], changed_at bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE narinfo_changes IN EXCLUSIVE MODE;
    INSERT INTO narinfo_changes (hash_part, at)
    SELECT h, changed_at FROM unnest(hash_parts) WITH ORDINALITY AS u (h, i) ORDER BY i;
END
$$;
