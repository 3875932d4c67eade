-- underling schema for SQLite. Times are INTEGER milliseconds since the Unix epoch (UTC), so that
-- comparisons are numeric and never depend on a text format.
CREATE TABLE IF NOT EXISTS underling_jobs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    task        TEXT    NOT NULL,
    queue       TEXT    NOT NULL DEFAULT 'default',
    args        TEXT    NOT NULL DEFAULT '{}',
    state       TEXT    NOT NULL DEFAULT 'inactive'
                CHECK (state IN ('inactive', 'active', 'finished', 'failed')),
    priority    INTEGER NOT NULL DEFAULT 0,
    attempts    INTEGER NOT NULL DEFAULT 1 CHECK (attempts >= 1),
    retries     INTEGER NOT NULL DEFAULT 0,
    created     INTEGER NOT NULL,
    delayed     INTEGER NOT NULL,
    started     INTEGER,
    finished    INTEGER,
    retried     INTEGER,
    expires     INTEGER,
    lax         INTEGER NOT NULL DEFAULT 0,
    has_parents INTEGER NOT NULL DEFAULT 0,
    worker_id   INTEGER,
    result      TEXT,
    notes       TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS underling_jobs_ready
    ON underling_jobs (priority DESC, id) WHERE state = 'inactive';
CREATE INDEX IF NOT EXISTS underling_jobs_active_worker
    ON underling_jobs (worker_id) WHERE state = 'active';
-- Failed jobs (stats, history, bulk retry). There is deliberately no index on (state, ...):
-- every state change would write to it. Each state has its own partial index instead, so a
-- transition writes only to the index of the state it enters.
CREATE INDEX IF NOT EXISTS underling_jobs_failed
    ON underling_jobs (finished) WHERE state = 'failed';
CREATE INDEX IF NOT EXISTS underling_jobs_finished
    ON underling_jobs (finished) WHERE state = 'finished';

CREATE TABLE IF NOT EXISTS underling_job_deps (
    child_id  INTEGER NOT NULL REFERENCES underling_jobs (id) ON DELETE CASCADE,
    parent_id INTEGER NOT NULL,
    PRIMARY KEY (child_id, parent_id)
);
CREATE INDEX IF NOT EXISTS underling_job_deps_parent ON underling_job_deps (parent_id);

CREATE TABLE IF NOT EXISTS underling_queues (
    name    TEXT PRIMARY KEY,
    paused  INTEGER NOT NULL DEFAULT 0,
    updated INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS underling_workers (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    host     TEXT    NOT NULL,
    pid      INTEGER NOT NULL,
    started  INTEGER NOT NULL,
    notified INTEGER NOT NULL,
    status   TEXT    NOT NULL DEFAULT '{}'
);

CREATE TABLE IF NOT EXISTS underling_worker_inbox (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    worker_id INTEGER NOT NULL REFERENCES underling_workers (id) ON DELETE CASCADE,
    command   TEXT    NOT NULL,
    args      TEXT    NOT NULL DEFAULT '[]',
    sent      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS underling_worker_inbox_worker ON underling_worker_inbox (worker_id, id);

CREATE TABLE IF NOT EXISTS underling_locks (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    name    TEXT    NOT NULL,
    expires INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS underling_locks_name ON underling_locks (name, expires);
