-- Job events and the audit log (see the PostgreSQL migration of the same number). Each
-- transition of a job is a row with the job's columns at that moment: in `underling_audit`
-- while the audit log is enabled, and in `underling_events` (an outbox that subscribers poll and
-- prune) while an event subscriber holds a lease in `underling_event_listeners`. The row
-- triggers that write them exist only while needed: the store creates and drops them.
CREATE TABLE IF NOT EXISTS underling_audit (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    event       TEXT    NOT NULL,
    id          INTEGER NOT NULL,
    task        TEXT    NOT NULL,
    queue       TEXT    NOT NULL,
    args        TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    priority    INTEGER NOT NULL,
    attempts    INTEGER NOT NULL,
    retries     INTEGER NOT NULL,
    created     INTEGER NOT NULL,
    delayed     INTEGER NOT NULL,
    started     INTEGER,
    finished    INTEGER,
    retried     INTEGER,
    expires     INTEGER,
    lax         INTEGER NOT NULL,
    worker_id   INTEGER,
    result      TEXT,
    notes       TEXT    NOT NULL,
    parents     TEXT
);
CREATE INDEX IF NOT EXISTS underling_audit_job ON underling_audit (id, seq);
CREATE INDEX IF NOT EXISTS underling_audit_at ON underling_audit (at);

CREATE TABLE IF NOT EXISTS underling_events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    event       TEXT    NOT NULL,
    id          INTEGER NOT NULL,
    task        TEXT    NOT NULL,
    queue       TEXT    NOT NULL,
    args        TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    priority    INTEGER NOT NULL,
    attempts    INTEGER NOT NULL,
    retries     INTEGER NOT NULL,
    created     INTEGER NOT NULL,
    delayed     INTEGER NOT NULL,
    started     INTEGER,
    finished    INTEGER,
    retried     INTEGER,
    expires     INTEGER,
    lax         INTEGER NOT NULL,
    worker_id   INTEGER,
    result      TEXT,
    notes       TEXT    NOT NULL,
    parents     TEXT
);
CREATE INDEX IF NOT EXISTS underling_events_at ON underling_events (at);

CREATE TABLE IF NOT EXISTS underling_event_listeners (
    id    TEXT    PRIMARY KEY,
    until INTEGER NOT NULL
);
