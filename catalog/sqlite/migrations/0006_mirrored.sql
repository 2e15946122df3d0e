-- 0006: paths mirrored from an upstream cache (pull-through) are told
-- apart from pushed ones, for their own retention (gc --mirror-retention).
-- 1: published from an upstream's narinfo; a push of the path clears it.
ALTER TABLE paths ADD COLUMN mirrored INTEGER NOT NULL DEFAULT 0;
