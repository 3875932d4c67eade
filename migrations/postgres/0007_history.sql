-- History by counters, not scans: finished and failed jobs and failed attempts per hour are
-- counted by the statements that settle them (underling_cycle, repair's stuck jobs), so that
-- `history` reads at most 24 x 16 small rows however many jobs the table holds, and an hour's
-- figures survive `job purge` and repair's removal of old jobs. Each settle adds to its
-- session's shard of the hour (pg_backend_pid() % 16), so that workers settling at once do not
-- queue on one row. The failed attempts that 0006 counted with a row trigger are counted here
-- too, and the trigger goes (a row trigger cost every settled row a function call).
CREATE TABLE IF NOT EXISTS underling_history (
    hour            TIMESTAMPTZ NOT NULL,
    shard           INTEGER     NOT NULL,
    finished        BIGINT      NOT NULL DEFAULT 0,
    failed          BIGINT      NOT NULL DEFAULT 0,
    failed_attempts BIGINT      NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, shard)
);

-- What the last 24 hours held before counting began: jobs that ended then (as far as they are
-- still stored) and the failed attempts 0006 counted.
INSERT INTO underling_history (hour, shard, finished, failed, failed_attempts)
SELECT hour, 16, sum(finished), sum(failed), sum(failed_attempts) FROM (
    SELECT date_trunc('hour', finished, 'UTC') AS hour,
           count(*) FILTER (WHERE state = 'finished') AS finished,
           count(*) FILTER (WHERE state = 'failed') AS failed, 0 AS failed_attempts
    FROM underling_jobs
    WHERE state IN ('finished', 'failed') AND finished >= now() - interval '25 hours'
    GROUP BY 1
    UNION ALL
    SELECT hour, 0, 0, attempts FROM underling_failed_attempts
    WHERE hour >= now() - interval '25 hours'
) seed
GROUP BY hour
ON CONFLICT (hour, shard) DO NOTHING;

DROP TRIGGER IF EXISTS underling_jobs_failed_attempt ON underling_jobs;
DROP FUNCTION IF EXISTS underling_count_failed_attempt();
DROP TABLE IF EXISTS underling_failed_attempts;

-- The worker's cycle of 0002, which now also counts what its settles did (the `counted` step).
CREATE OR REPLACE FUNCTION underling_cycle(
    s_ids BIGINT[], s_retries INTEGER[], s_ok BOOLEAN[], s_results JSONB[], s_delays DOUBLE PRECISION[],
    wake_channel TEXT,
    claim_worker BIGINT, claim_queues TEXT[], claim_tasks TEXT[], lim INTEGER, at TIMESTAMPTZ)
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
    at := COALESCE(at, now());
    IF cardinality(s_ids) > 0 THEN
        RETURN QUERY
        WITH i AS (
            SELECT * FROM unnest(s_ids, s_retries, s_ok, s_results, s_delays)
                AS u(id, retries, ok, result, delay)
        ), upd AS (
            UPDATE underling_jobs AS j SET
                state = CASE WHEN i.ok THEN 'finished'
                             WHEN j.retries + 1 < j.attempts THEN 'inactive' ELSE 'failed' END,
                finished = at,
                result = i.result,
                retries = CASE WHEN NOT i.ok AND j.retries + 1 < j.attempts
                               THEN j.retries + 1 ELSE j.retries END,
                retried = CASE WHEN NOT i.ok AND j.retries + 1 < j.attempts
                               THEN at ELSE j.retried END,
                delayed = CASE WHEN NOT i.ok AND j.retries + 1 < j.attempts
                               THEN at + make_interval(secs => i.delay) ELSE j.delayed END
            FROM i
            WHERE j.id = i.id AND j.retries = i.retries AND j.state = active
            RETURNING j.id, j.state
        ), counted AS (
            -- History: what the settles did this hour, on this session's shard of the hour.
            INSERT INTO underling_history AS h (hour, shard, finished, failed, failed_attempts)
            SELECT date_trunc('hour', at, 'UTC'), pg_backend_pid() % 16,
                   count(*) FILTER (WHERE upd.state = 'finished'),
                   count(*) FILTER (WHERE upd.state = 'failed'),
                   count(*) FILTER (WHERE upd.state <> 'finished')
            FROM upd HAVING count(*) > 0
            ON CONFLICT (hour, shard) DO UPDATE SET
                finished = h.finished + EXCLUDED.finished,
                failed = h.failed + EXCLUDED.failed,
                failed_attempts = h.failed_attempts + EXCLUDED.failed_attempts
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
        RETURN QUERY SELECT * FROM underling_claim(claim_worker, claim_queues, claim_tasks, lim, at);
    END IF;
END;
$$ LANGUAGE plpgsql
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
SET enable_material = off SET enable_sort = off SET enable_bitmapscan = off SET jit = off
SET plan_cache_mode = force_generic_plan SET search_path FROM CURRENT;
