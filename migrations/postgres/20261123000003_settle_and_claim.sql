-- Settles finished attempts and claims new jobs in one call: one round trip and one commit per
-- worker cycle instead of two.
--
-- Settled jobs come back with their new state (finished, failed, or inactive when retried);
-- claimed jobs come back active. An attempt whose job was retried, rescued or removed
-- meanwhile (retries or state no longer match) changes nothing and does not come back.
-- Workers are woken for the children of jobs that ended.
CREATE OR REPLACE FUNCTION underling_settle_and_claim(
    s_ids BIGINT[], s_retries INTEGER[], s_ok BOOLEAN[], s_results JSONB[], s_delays DOUBLE PRECISION[],
    wake_channel TEXT,
    claim_worker BIGINT, claim_queues TEXT[], claim_tasks TEXT[], lim INTEGER)
RETURNS SETOF underling_jobs AS $$
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
            -- `id = ANY(s_ids)`: look the jobs up by primary key, never by scanning every
            -- active job (the state estimate is nearly always stale in a queue table).
            WHERE j.id = ANY(s_ids) AND j.id = i.id AND j.retries = i.retries AND j.state = 'active'
            RETURNING j.*
        ), wake AS (
            -- From the ended jobs to their children, each child by primary key: a join that
            -- the planner could start from the (large) set of waiting jobs is avoided.
            SELECT pg_notify(wake_channel, s.queue) FROM (
                SELECT DISTINCT (SELECT c.queue FROM underling_jobs c
                                 WHERE c.id = d.child_id AND c.state = 'inactive') AS queue
                FROM upd JOIN underling_job_deps d ON d.parent_id = upd.id
                WHERE upd.state IN ('finished', 'failed')) s
            WHERE s.queue IS NOT NULL
        )
        SELECT * FROM upd WHERE (SELECT count(*) FROM wake) >= 0;
    END IF;
    IF lim > 0 THEN
        -- A new snapshot: children released just above can be claimed right away.
        RETURN QUERY SELECT * FROM underling_claim(claim_worker, claim_queues, claim_tasks, lim);
    END IF;
END;
$$ LANGUAGE plpgsql SET enable_bitmapscan = off SET plan_cache_mode = force_generic_plan;
