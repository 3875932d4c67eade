-- Schedules (cron), as in the PostgreSQL migration of the same number. Times are
-- milliseconds since the epoch; JSON is text.
CREATE TABLE IF NOT EXISTS underling_schedules (
    name        TEXT PRIMARY KEY,
    cron        TEXT NOT NULL,
    timezone    TEXT NOT NULL DEFAULT 'UTC',
    task        TEXT NOT NULL,
    args        TEXT NOT NULL DEFAULT '{}',
    queue       TEXT,
    priority    INTEGER,
    attempts    INTEGER,
    options     TEXT NOT NULL DEFAULT '{}',
    paused      INTEGER NOT NULL DEFAULT 0,
    catch_up    TEXT NOT NULL DEFAULT 'last' CHECK (catch_up IN ('last', 'skip')),
    next_run    INTEGER NOT NULL,
    last_run    INTEGER,
    last_job_id INTEGER,
    created     INTEGER NOT NULL,
    updated     INTEGER NOT NULL
);

CREATE INDEX IF NOT EXISTS underling_schedules_due
    ON underling_schedules (next_run) WHERE NOT paused;
