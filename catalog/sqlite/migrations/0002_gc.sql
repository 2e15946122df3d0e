-- 0002: retention and garbage collection. Times are integer Unix
-- milliseconds (UTC), as in 0001.

-- When a path was last used: a narinfo or NAR request, or a push of it.
ALTER TABLE paths ADD COLUMN last_used INTEGER NOT NULL DEFAULT 0;
UPDATE paths SET last_used = created_at;
-- Whether a deleted path's deriver is still some other path's.
CREATE INDEX paths_deriver ON paths (deriver);

-- A NAR record is the lock on its blobs: 'pending' while an upload puts
-- them in place, 'ready' once recorded, 'deleting' while a deletion removes
-- them. uploads counts the uploads of an existing record under way (begun,
-- not yet recorded); a deletion does not take a NAR's blobs from under one.
ALTER TABLE nars ADD COLUMN state TEXT NOT NULL DEFAULT 'ready'
    CHECK (state IN ('pending', 'ready', 'deleting'));
ALTER TABLE nars ADD COLUMN uploads INTEGER NOT NULL DEFAULT 0;
CREATE INDEX nars_state ON nars (state);

-- Referrers of a path, answered from the index alone.
DROP INDEX refs_reference;
CREATE INDEX refs_reference ON refs (reference, referrer);

-- The hash part of a realisation's outPath, so that deleting the path
-- deletes its realisations; '' when the body names none. The hash part is
-- the first 32 characters of the basename, if they are nix32 ones.
ALTER TABLE realisations ADD COLUMN out_hash TEXT NOT NULL DEFAULT '';
UPDATE realisations SET out_hash = h.hash
FROM (
    SELECT id, substr(replace(out, rtrim(out, replace(out, '/', '')), ''), 1, 32) AS hash
    FROM (
        SELECT id, CASE WHEN json_valid(CAST(body AS TEXT)) THEN
            CASE WHEN json_type(CAST(body AS TEXT), '$.outPath') = 'text' THEN
                json_extract(CAST(body AS TEXT), '$.outPath')
            END
        END AS out
        FROM realisations
    )
) h
WHERE h.id = realisations.id AND length(h.hash) = 32
    AND h.hash NOT GLOB '*[^0123456789abcdfghijklmnpqrsvwxyz]*';
CREATE INDEX realisations_out_hash ON realisations (out_hash);

-- Named roots of garbage collection. A name's current pin is its row with
-- the highest seq; the others are previous pins kept on purpose.
CREATE TABLE pins (
    seq        INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL,
    hash_part  TEXT    NOT NULL REFERENCES paths (hash_part),
    store_path TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER           -- NULL: never
);
CREATE INDEX pins_name ON pins (name, seq);
CREATE INDEX pins_hash_part ON pins (hash_part);

-- Named leases shared by processes, e.g. the one garbage collection.
CREATE TABLE locks (
    name       TEXT    PRIMARY KEY,
    holder     TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
);

-- Records of garbage collections.
CREATE TABLE gc_runs (
    id            INTEGER PRIMARY KEY,
    holder        TEXT    NOT NULL,
    started       INTEGER NOT NULL,
    finished      INTEGER NOT NULL,
    paths_removed INTEGER NOT NULL,
    nars_removed  INTEGER NOT NULL,
    bytes_removed INTEGER NOT NULL,
    live_paths    INTEGER NOT NULL,
    live_bytes    INTEGER NOT NULL,
    error         TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX gc_runs_started ON gc_runs (started);
