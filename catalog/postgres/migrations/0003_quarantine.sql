-- 0003: damage found and fenced off, equivalent to the SQLite catalog's
-- migration 0005. Times are bigint Unix milliseconds (UTC), as in 0001.

-- A NAR whose blob was found damaged or lost is quarantined: its paths,
-- and their referrers, are not served until they are pushed again.
ALTER TABLE nars ADD COLUMN quarantined_at bigint;  -- NULL: not quarantined
ALTER TABLE nars ADD COLUMN quarantine_reason text NOT NULL DEFAULT '';
-- When the scrub last re-read the NAR (0: never), oldest first.
ALTER TABLE nars ADD COLUMN scrubbed_at bigint NOT NULL DEFAULT 0;
CREATE INDEX nars_scrubbed_at ON nars (scrubbed_at, id);

-- The paths a quarantined NAR hides: those naming it, and their
-- referrers, directly or not. NarInfo serves no path listed here.
CREATE TABLE quarantine (
    hash_part text COLLATE "C" NOT NULL REFERENCES paths (hash_part) ON DELETE CASCADE,
    nar_key   text COLLATE "C" NOT NULL,
    PRIMARY KEY (hash_part, nar_key)
);
CREATE INDEX quarantine_nar_key ON quarantine (nar_key);
