-- Claims that do not see other queues' backlogs, delayed jobs or finished rows.
--
-- The ready index of 0001 (priority DESC, id) WHERE state = 'inactive' holds every waiting job
-- of every queue, due or not: a claim from a small queue walked the backlogs of all the others
-- and every job waiting for a future time (140 ms for an idle poll beside 210,000 waiting
-- jobs). It is replaced by two partial indexes that each waiting job is in exactly one of:
--
-- * underling_jobs_queue_ready (queue, priority DESC, id): jobs that were due when they were
--   last queued (enqueued, retried) or promoted. A claim walks it once per claimed queue, in
--   claim order, and stops after `lim` jobs: other queues are never read.
-- * underling_jobs_queue_delayed (queue, delayed): jobs that were queued for a later time.
--   Found by range (`delayed <= at`) when they fall due, and then promoted: `promoted` is set
--   to their due time, which moves them into the ready index. A million jobs waiting for
--   tomorrow cost a claim one index probe per queue.
--
-- Which index a job is in depends on its own columns only (never on the clock), so that the
-- predicates can be partial-index predicates: a job is in the ready index when
--     delayed <= GREATEST(created, retried, promoted)
-- (GREATEST ignores NULLs). Enqueue sets delayed = created for a job without a delay, a retry
-- sets retried = at and delayed = at + its delay, and a promotion sets promoted = delayed; no
-- other statement writes these columns. The readiness rule (underling_ready) is unchanged and
-- still decides; the split only decides where a claim looks.

ALTER TABLE underling_jobs ADD COLUMN IF NOT EXISTS promoted TIMESTAMPTZ;

CREATE INDEX IF NOT EXISTS underling_jobs_queue_ready
    ON underling_jobs (queue, priority DESC, id)
    WHERE state = 'inactive' AND delayed <= GREATEST(created, retried, promoted);
CREATE INDEX IF NOT EXISTS underling_jobs_queue_delayed
    ON underling_jobs (queue, delayed)
    WHERE state = 'inactive' AND delayed > GREATEST(created, retried, promoted);
DROP INDEX IF EXISTS underling_jobs_ready;

-- Claims up to `lim` ready jobs of the queues (and tasks, when given) for a worker, in
-- priority then id order across the queues, skipping rows other claims hold.
--
-- First the delayed jobs of these queues that are due at `at` are promoted into the ready
-- index (at most 1,000 per queue and call, earliest due first, skipping rows others hold):
-- one index range per queue, empty unless something fell due. Then each claimed queue that
-- is not paused is walked in claim order for at most `lim` ready jobs (locked as they are
-- read, so concurrent claims skip each other's), and the first `lim` of all of them in
-- priority, id order are claimed. With several queues up to `lim` rows per queue are locked
-- and the ones not claimed are let go at commit, a moment later.
--
-- The planner settings are those of 0002: walking the index in claim order and stopping after
-- `lim` rows is always right here; the only sort is of the at most `lim` rows per queue read.
CREATE OR REPLACE FUNCTION underling_claim(
    claim_worker BIGINT, claim_queues TEXT[], claim_tasks TEXT[], lim INTEGER, at TIMESTAMPTZ)
RETURNS TABLE (
    id BIGINT, task TEXT, queue TEXT, args JSONB, state TEXT, priority INTEGER,
    attempts INTEGER, retries INTEGER, created TIMESTAMPTZ, delayed TIMESTAMPTZ,
    started TIMESTAMPTZ, finished TIMESTAMPTZ, retried TIMESTAMPTZ, expires TIMESTAMPTZ,
    lax BOOLEAN, worker_id BIGINT, result JSONB, notes JSONB) AS $$
#variable_conflict use_column
BEGIN
    UPDATE underling_jobs AS j SET promoted = j.delayed
    FROM (SELECT DISTINCT q.name FROM unnest(claim_queues) AS q(name)) AS q
    CROSS JOIN LATERAL (
        SELECT c.id FROM underling_jobs c
        WHERE c.queue = q.name AND c.state = 'inactive'
          AND c.delayed > GREATEST(c.created, c.retried, c.promoted) AND c.delayed <= at
        ORDER BY c.delayed
        LIMIT 1000
        FOR UPDATE SKIP LOCKED) AS due
    WHERE j.id = due.id;

    RETURN QUERY
    UPDATE underling_jobs AS j SET state = 'active', started = at, worker_id = claim_worker
    FROM (
        SELECT p.id FROM (SELECT DISTINCT q.name FROM unnest(claim_queues) AS q(name)) AS q
        CROSS JOIN LATERAL (
            SELECT c.id, c.priority FROM underling_jobs c
            WHERE c.queue = q.name AND c.state = 'inactive'
              AND c.delayed <= GREATEST(c.created, c.retried, c.promoted)
              AND (cardinality(claim_tasks) = 0 OR c.task = ANY(claim_tasks))
              AND underling_ready(c, at)
            ORDER BY c.priority DESC, c.id
            LIMIT lim
            FOR UPDATE SKIP LOCKED) AS p
        WHERE NOT EXISTS (SELECT 1 FROM underling_queues pq WHERE pq.name = q.name AND pq.paused)
        ORDER BY p.priority DESC, p.id
        LIMIT lim) AS picked
    WHERE j.id = picked.id
    RETURNING j.id, j.task, j.queue, j.args, j.state, j.priority, j.attempts, j.retries,
              j.created, j.delayed, j.started, j.finished, j.retried, j.expires, j.lax,
              j.worker_id, j.result, j.notes;
END;
$$ LANGUAGE plpgsql
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
SET enable_material = off SET enable_sort = off SET enable_bitmapscan = off SET jit = off
SET plan_cache_mode = force_generic_plan SET search_path FROM CURRENT;
