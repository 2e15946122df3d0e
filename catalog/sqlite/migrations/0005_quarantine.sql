-- 0005: damage found and fenced off. Times are integer Unix milliseconds
-- (UTC), as in 0001.

-- A NAR whose blob was found damaged or lost is quarantined: its paths,
-- and their referrers, are not served until they are pushed again.
ALTER TABLE nars ADD COLUMN quarantined_at INTEGER;  -- NULL: not quarantined
ALTER TABLE nars ADD COLUMN quarantine_reason TEXT NOT NULL DEFAULT '';
-- When the scrub last re-read the NAR (0: never), oldest first.
ALTER TABLE nars ADD COLUMN scrubbed_at INTEGER NOT NULL DEFAULT 0;
CREATE INDEX nars_scrubbed_at ON nars (scrubbed_at, id);

-- The paths a quarantined NAR hides: those naming it, and their
-- referrers, directly or not. NarInfo serves no path listed here.
CREATE TABLE quarantine (
    hash_part TEXT NOT NULL REFERENCES paths (hash_part) ON DELETE CASCADE,
    nar_key   TEXT NOT NULL,
    PRIMARY KEY (hash_part, nar_key)
);
CREATE INDEX quarantine_nar_key ON quarantine (nar_key);
