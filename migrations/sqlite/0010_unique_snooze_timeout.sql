-- Unique jobs: the same columns and index as PostgreSQL's 0010_unique.sql (see there). A job
-- carries its unique key, scope and (for the `period` scope) the end of its period, in
-- milliseconds; the partial unique index makes a second row with a live key impossible. The
-- enqueue (under SQLite's single writer) clears the key of a holder that is no longer live
-- before inserting, so that the claim, settles and repair never touch keys.
ALTER TABLE underling_jobs ADD COLUMN unique_key TEXT;
ALTER TABLE underling_jobs ADD COLUMN unique_scope TEXT
    CHECK (unique_scope IN ('inactive', 'active', 'period'));
ALTER TABLE underling_jobs ADD COLUMN unique_until INTEGER;

CREATE UNIQUE INDEX IF NOT EXISTS underling_jobs_unique_key
    ON underling_jobs (unique_key) WHERE unique_key IS NOT NULL;

-- Per-job timeouts (ms; NULL: the task's) and snoozes, as in PostgreSQL's 0010: a snooze puts
-- the job back to inactive as a new attempt (retries + 1) and gives it one more attempt
-- (attempts + 1), so that it uses none.
ALTER TABLE underling_jobs ADD COLUMN timeout_ms INTEGER;
ALTER TABLE underling_jobs ADD COLUMN snoozes INTEGER NOT NULL DEFAULT 0;

-- Event and audit records carry the new columns too (PostgreSQL's records are whole rows).
ALTER TABLE underling_audit ADD COLUMN unique_key TEXT;
ALTER TABLE underling_audit ADD COLUMN timeout_ms INTEGER;
ALTER TABLE underling_audit ADD COLUMN snoozes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE underling_events ADD COLUMN unique_key TEXT;
ALTER TABLE underling_events ADD COLUMN timeout_ms INTEGER;
ALTER TABLE underling_events ADD COLUMN snoozes INTEGER NOT NULL DEFAULT 0;
