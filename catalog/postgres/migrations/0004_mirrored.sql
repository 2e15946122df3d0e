-- 0004: paths mirrored from an upstream cache (pull-through) are told
-- apart from pushed ones, as in the SQLite catalog's migration 0006.
-- true: published from an upstream's narinfo; a push of the path clears it.
ALTER TABLE paths ADD COLUMN mirrored boolean NOT NULL DEFAULT false;
