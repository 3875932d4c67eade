-- The worker's cycle, second version: settle finished attempts and claim new jobs in one call.
--
-- What changed from underling_settle_and_claim (kept as it was, so that workers of the
-- previous release keep running during a rolling upgrade):
--
-- * Plans that cannot go quadratic. A queue table's statistics are nearly always stale, and
--   with them a generic plan used to read every active job through the partial index on
--   active jobs and join it with the outcomes by rescanning them (O(outcomes x active jobs):
--   100 ms for 512 outcomes), or to claim by a sequential scan of the whole table joined to
--   the locked rows. Every plan here walks an index from a small, known set: outcomes to jobs
--   by primary key, claimed ids to jobs by primary key. Sequential scans, hash and merge joins,
--   materialization, sorts and bitmap scans are switched off for these functions alone, and
--   so is JIT compilation, which stale estimates set off for no gain.
-- * Narrow rows for outcomes: a settled job comes back as its id and new state only; a
--   claimed job comes back whole. The other columns of a settled row are NULL.
-- * The wake-up of children is skipped when no job has a parent at all.

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
