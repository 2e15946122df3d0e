-- 0001: the initial schema. Times are integer Unix milliseconds (UTC).

-- One row per stored NAR file; a NAR no path names is "unclaimed" and lives
-- on a lease that starts at created_at.
CREATE TABLE nars (
    id          INTEGER PRIMARY KEY,
    key         TEXT    NOT NULL UNIQUE,
    compression TEXT    NOT NULL,
    file_hash   TEXT    NOT NULL,
    file_size   INTEGER NOT NULL,
    nar_hash    TEXT    NOT NULL,
    nar_size    INTEGER NOT NULL,
    listing_key TEXT,            -- NULL when the NAR has no .ls listing
    created_at  INTEGER NOT NULL
);
CREATE INDEX nars_listing_key ON nars (listing_key);
CREATE INDEX nars_created_at ON nars (created_at);

-- Names a NAR was uploaded under, other than its key.
CREATE TABLE nar_aliases (
    name   TEXT    PRIMARY KEY,
    nar_id INTEGER NOT NULL REFERENCES nars (id) ON DELETE CASCADE
);
CREATE INDEX nar_aliases_nar_id ON nar_aliases (nar_id);

-- Published store paths with their rendered, signed narinfo.
CREATE TABLE paths (
    hash_part  TEXT    PRIMARY KEY,
    store_path TEXT    NOT NULL,
    nar_id     INTEGER NOT NULL REFERENCES nars (id) ON DELETE RESTRICT,
    nar_hash   TEXT    NOT NULL,
    nar_size   INTEGER NOT NULL,
    deriver    TEXT    NOT NULL DEFAULT '',
    narinfo    TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX paths_nar_id ON paths (nar_id);

-- References of published paths, by hash part. reference is not a foreign
-- key: a path published with an incomplete closure names absent paths.
CREATE TABLE refs (
    referrer  TEXT NOT NULL REFERENCES paths (hash_part) ON DELETE CASCADE,
    reference TEXT NOT NULL,
    PRIMARY KEY (referrer, reference)
);
CREATE INDEX refs_reference ON refs (reference);

-- Realisations (.doi JSON documents) by their DrvOutput id.
CREATE TABLE realisations (
    id         TEXT    PRIMARY KEY,
    body       BLOB    NOT NULL,
    created_at INTEGER NOT NULL
);

-- Access tokens; only the SHA-256 of the secret is kept.
CREATE TABLE tokens (
    name       TEXT    PRIMARY KEY,
    hash       BLOB    NOT NULL UNIQUE,
    scope      TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
