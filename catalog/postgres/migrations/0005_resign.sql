-- 0005: key rollover, equivalent to the SQLite catalog's migration 0007.
-- Times are bigint Unix milliseconds (UTC), as in 0001.

-- The state of the background re-signing of narinfos
-- (catalog.ResignState): one row, replaced as a pass goes, so that a pass
-- resumes where it stopped and a start with an unchanged key set reads
-- no path. key_names and retired are JSON arrays of key names.
CREATE TABLE resign_state (
    id        integer PRIMARY KEY CHECK (id = 1),
    target    text    NOT NULL,
    key_names text    NOT NULL,
    retired   text    NOT NULL,
    holder    text    NOT NULL,
    cursor    text    COLLATE "C" NOT NULL,  -- hash part of the last path checked
    checked   bigint  NOT NULL,
    rewritten bigint  NOT NULL,
    total     bigint  NOT NULL,
    seq       bigint  NOT NULL,  -- change log position still to follow
    started   bigint  NOT NULL,
    updated   bigint  NOT NULL,
    completed bigint  NOT NULL   -- 0 while the pass runs
);
