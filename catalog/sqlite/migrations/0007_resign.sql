-- 0007: key rollover. Times are integer Unix milliseconds (UTC), as in
-- 0001.

-- The state of the background re-signing of narinfos
-- (catalog.ResignState): one row, replaced as a pass goes, so that a pass
-- resumes where it stopped and a start with an unchanged key set reads
-- no path. key_names and retired are JSON arrays of key names.
CREATE TABLE resign_state (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    target    TEXT    NOT NULL,
    key_names TEXT    NOT NULL,
    retired   TEXT    NOT NULL,
    holder    TEXT    NOT NULL,
    cursor    TEXT    NOT NULL,  -- hash part of the last path checked
    checked   INTEGER NOT NULL,
    rewritten INTEGER NOT NULL,
    total     INTEGER NOT NULL,
    seq       INTEGER NOT NULL,  -- change log position still to follow
    started   INTEGER NOT NULL,
    updated   INTEGER NOT NULL,
    completed INTEGER NOT NULL   -- 0 while the pass runs
);
