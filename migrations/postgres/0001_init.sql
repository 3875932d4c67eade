-- underling schema for PostgreSQL: the whole schema as of the first release (migrations of the
-- development history squashed into one). Later changes go into new files; see README.md.
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

-- A queue table churns: every job is inserted, updated two or three times and removed, which
-- leaves dead index entries in front of the claim. Vacuum and analyze it early and without
-- throttling, instead of waiting for a fifth of the table to be dead (the server default).
ALTER TABLE underling_jobs SET (
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_analyze_scale_factor = 0.02,
    autovacuum_analyze_threshold = 1000,
    autovacuum_vacuum_cost_delay = 0
);

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

-- The claim and the worker's cycle (settle finished attempts, then claim new jobs, in one call).
--
-- The claim is a function so that it can carry planner settings of its own. A queue table's
-- statistics are nearly always stale (thousands of rows arrive and leave between two ANALYZE
-- runs), and with stale estimates a generic plan can read every ready job through a bitmap
-- scan and sort them, read every active job through the partial index on active jobs and join
-- it with the outcomes by rescanning them (O(outcomes x active jobs)), or claim by a
-- sequential scan of the whole table joined to the locked rows. Every plan here walks an index
-- from a small, known set: the ready index in claim order (stopping after `lim` rows), outcomes
-- to jobs by primary key, claimed ids to jobs by primary key. Sequential scans, hash and merge
-- joins, materialization, sorts and bitmap scans are switched off for these functions alone,
-- and so is JIT compilation, which stale estimates set off for no gain.
--
-- Settled jobs come back as their id and new state only (finished, failed, or inactive when
-- retried; the other columns are NULL); claimed jobs come back active and whole. An attempt
-- whose job was retried, rescued or removed meanwhile (retries or state no longer match)
-- changes nothing and does not come back. Workers are woken for the children of jobs that
-- ended; that wake-up is skipped when no job has a parent at all.

CREATE OR REPLACE FUNCTION underling_claim_v2(
    claim_worker BIGINT, claim_queues TEXT[], claim_tasks TEXT[], lim INTEGER)
RETURNS TABLE (
    id BIGINT, task TEXT, queue TEXT, args JSONB, state TEXT, priority INTEGER,
    attempts INTEGER, retries INTEGER, created TIMESTAMPTZ, delayed TIMESTAMPTZ,
    started TIMESTAMPTZ, finished TIMESTAMPTZ, retried TIMESTAMPTZ, expires TIMESTAMPTZ,
    lax BOOLEAN, worker_id BIGINT, result JSONB, notes JSONB) AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    UPDATE underling_jobs AS j SET state = 'active', started = now(), worker_id = claim_worker
    FROM (
        SELECT c.id FROM underling_jobs c
        WHERE c.state = 'inactive' AND c.queue = ANY(claim_queues)
          AND (cardinality(claim_tasks) = 0 OR c.task = ANY(claim_tasks))
          AND c.delayed <= now() AND (c.expires IS NULL OR c.expires > now())
          AND c.queue <> ALL (ARRAY(SELECT q.name FROM underling_queues q WHERE q.paused))
          AND (NOT c.has_parents OR NOT EXISTS (
                SELECT 1 FROM underling_job_deps d JOIN underling_jobs p ON p.id = d.parent_id
                WHERE d.child_id = c.id AND p.state <> 'finished'
                  AND NOT (c.lax AND p.state = 'failed')))
        ORDER BY c.priority DESC, c.id
        LIMIT lim
        FOR UPDATE SKIP LOCKED) AS picked
    WHERE j.id = picked.id
    RETURNING j.id, j.task, j.queue, j.args, j.state, j.priority, j.attempts, j.retries,
              j.created, j.delayed, j.started, j.finished, j.retried, j.expires, j.lax,
              j.worker_id, j.result, j.notes;
END;
$$ LANGUAGE plpgsql
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
SET enable_material = off SET enable_sort = off SET enable_bitmapscan = off SET jit = off
SET plan_cache_mode = force_generic_plan;

CREATE OR REPLACE FUNCTION underling_settle_and_claim_v2(
    s_ids BIGINT[], s_retries INTEGER[], s_ok BOOLEAN[], s_results JSONB[], s_delays DOUBLE PRECISION[],
    wake_channel TEXT,
    claim_worker BIGINT, claim_queues TEXT[], claim_tasks TEXT[], lim INTEGER)
RETURNS TABLE (
    id BIGINT, task TEXT, queue TEXT, args JSONB, state TEXT, priority INTEGER,
    attempts INTEGER, retries INTEGER, created TIMESTAMPTZ, delayed TIMESTAMPTZ,
    started TIMESTAMPTZ, finished TIMESTAMPTZ, retried TIMESTAMPTZ, expires TIMESTAMPTZ,
    lax BOOLEAN, worker_id BIGINT, result JSONB, notes JSONB) AS $$
#variable_conflict use_column
DECLARE
    -- Compared through a variable, the state cannot match the predicate of the partial index
    -- on active jobs, so the planner cannot pick that index (and read every active job).
    active TEXT := 'active';
BEGIN
    IF cardinality(s_ids) > 0 THEN
        RETURN QUERY
        WITH i AS (
            SELECT * FROM unnest(s_ids, s_retries, s_ok, s_results, s_delays)
                AS u(id, retries, ok, result, delay)
        ), upd AS (
            UPDATE underling_jobs AS j SET
                state = CASE WHEN i.ok THEN 'finished'
                             WHEN j.retries + 1 < j.attempts THEN 'inactive' ELSE 'failed' END,
                finished = now(),
                result = i.result,
                retries = CASE WHEN NOT i.ok AND j.retries + 1 < j.attempts
                               THEN j.retries + 1 ELSE j.retries END,
                retried = CASE WHEN NOT i.ok AND j.retries + 1 < j.attempts
                               THEN now() ELSE j.retried END,
                delayed = CASE WHEN NOT i.ok AND j.retries + 1 < j.attempts
                               THEN now() + make_interval(secs => i.delay) ELSE j.delayed END
            FROM i
            WHERE j.id = i.id AND j.retries = i.retries AND j.state = active
            RETURNING j.id, j.state
        ), wake AS (
            -- From the ended jobs to their children, each child by primary key.
            SELECT pg_notify(wake_channel, s.queue) FROM (
                SELECT DISTINCT (SELECT c.queue FROM underling_jobs c
                                 WHERE c.id = d.child_id AND c.state = 'inactive') AS queue
                FROM upd JOIN underling_job_deps d ON d.parent_id = upd.id
                WHERE upd.state IN ('finished', 'failed')
                  AND EXISTS (SELECT 1 FROM underling_job_deps)) s
            WHERE s.queue IS NOT NULL
        )
        SELECT upd.id, NULL::TEXT, NULL::TEXT, NULL::JSONB, upd.state, NULL::INTEGER,
               NULL::INTEGER, NULL::INTEGER, NULL::TIMESTAMPTZ, NULL::TIMESTAMPTZ,
               NULL::TIMESTAMPTZ, NULL::TIMESTAMPTZ, NULL::TIMESTAMPTZ, NULL::TIMESTAMPTZ,
               NULL::BOOLEAN, NULL::BIGINT, NULL::JSONB, NULL::JSONB
        FROM upd WHERE (SELECT count(*) FROM wake) >= 0;
    END IF;
    IF lim > 0 THEN
        -- A new snapshot: children released just above can be claimed right away.
        RETURN QUERY SELECT * FROM underling_claim_v2(claim_worker, claim_queues, claim_tasks, lim);
    END IF;
END;
$$ LANGUAGE plpgsql
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
SET enable_material = off SET enable_sort = off SET enable_bitmapscan = off SET jit = off
SET plan_cache_mode = force_generic_plan;
