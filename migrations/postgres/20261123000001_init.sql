-- underling schema for PostgreSQL.
CREATE TABLE IF NOT EXISTS underling_jobs (
    id          BIGSERIAL PRIMARY KEY,
    task        TEXT        NOT NULL,
    queue       TEXT        NOT NULL DEFAULT 'default',
    args        JSONB       NOT NULL DEFAULT '{}',
    state       TEXT        NOT NULL DEFAULT 'inactive'
                CHECK (state IN ('inactive', 'active', 'finished', 'failed')),
    priority    INTEGER     NOT NULL DEFAULT 0,
    attempts    INTEGER     NOT NULL DEFAULT 1 CHECK (attempts >= 1),
    retries     INTEGER     NOT NULL DEFAULT 0,
    created     TIMESTAMPTZ NOT NULL DEFAULT now(),
    delayed     TIMESTAMPTZ NOT NULL DEFAULT now(),
    started     TIMESTAMPTZ,
    finished    TIMESTAMPTZ,
    retried     TIMESTAMPTZ,
    expires     TIMESTAMPTZ,
    lax         BOOLEAN     NOT NULL DEFAULT false,
    -- true when the job has parents: lets the claim skip the dependency probe for most jobs.
    has_parents BOOLEAN     NOT NULL DEFAULT false,
    worker_id   BIGINT,
    result      JSONB,
    notes       JSONB       NOT NULL DEFAULT '{}'
) WITH (fillfactor = 80);

-- The claim walks this index in claim order; it only holds ready (inactive) jobs, so millions
-- of finished rows never slow it down.
CREATE INDEX IF NOT EXISTS underling_jobs_ready
    ON underling_jobs (priority DESC, id) WHERE state = 'inactive';
-- Repair: active jobs per worker.
CREATE INDEX IF NOT EXISTS underling_jobs_active_worker
    ON underling_jobs (worker_id) WHERE state = 'active';
-- Failed jobs (stats, history, bulk retry). There is deliberately no index on (state, ...):
-- every state change would write to it. Each state has its own partial index instead, so a
-- transition writes only to the index of the state it enters.
CREATE INDEX IF NOT EXISTS underling_jobs_failed
    ON underling_jobs (finished) WHERE state = 'failed';
-- Repair: old finished jobs.
CREATE INDEX IF NOT EXISTS underling_jobs_finished
    ON underling_jobs (finished) WHERE state = 'finished';

CREATE TABLE IF NOT EXISTS underling_job_deps (
    child_id  BIGINT NOT NULL REFERENCES underling_jobs (id) ON DELETE CASCADE,
    -- No foreign key: a removed parent counts as done, and the child still lists it.
    parent_id BIGINT NOT NULL,
    PRIMARY KEY (child_id, parent_id)
);
CREATE INDEX IF NOT EXISTS underling_job_deps_parent ON underling_job_deps (parent_id);

CREATE TABLE IF NOT EXISTS underling_queues (
    name    TEXT PRIMARY KEY,
    paused  BOOLEAN     NOT NULL DEFAULT false,
    updated TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS underling_workers (
    id       BIGSERIAL PRIMARY KEY,
    host     TEXT        NOT NULL,
    pid      INTEGER     NOT NULL,
    started  TIMESTAMPTZ NOT NULL DEFAULT now(),
    notified TIMESTAMPTZ NOT NULL DEFAULT now(),
    status   JSONB       NOT NULL DEFAULT '{}'
);

CREATE TABLE IF NOT EXISTS underling_worker_inbox (
    id        BIGSERIAL PRIMARY KEY,
    worker_id BIGINT      NOT NULL REFERENCES underling_workers (id) ON DELETE CASCADE,
    command   TEXT        NOT NULL,
    args      JSONB       NOT NULL DEFAULT '[]',
    sent      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS underling_worker_inbox_worker ON underling_worker_inbox (worker_id, id);

CREATE TABLE IF NOT EXISTS underling_locks (
    id      BIGSERIAL PRIMARY KEY,
    name    TEXT        NOT NULL,
    expires TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS underling_locks_name ON underling_locks (name, expires);

-- Takes a hold on a named, shared lock unless `lock_limit` holds are live. A zero or negative
-- duration only checks. One call is one statement, serialized per name by an advisory lock.
CREATE OR REPLACE FUNCTION underling_lock(lock_name TEXT, duration_secs DOUBLE PRECISION, lock_limit INTEGER)
RETURNS BOOLEAN AS $$
DECLARE
    new_expires TIMESTAMPTZ := now() + make_interval(secs => duration_secs);
BEGIN
    PERFORM pg_advisory_xact_lock(1970170216, hashtext(lock_name));
    DELETE FROM underling_locks WHERE name = lock_name AND expires <= now();
    IF (SELECT count(*) >= lock_limit FROM underling_locks WHERE name = lock_name) THEN
        RETURN false;
    END IF;
    IF new_expires > now() THEN
        INSERT INTO underling_locks (name, expires) VALUES (lock_name, new_expires);
    END IF;
    RETURN true;
END;
$$ LANGUAGE plpgsql;
