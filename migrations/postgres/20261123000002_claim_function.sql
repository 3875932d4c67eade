-- The claim as a function, so that it can carry planner settings of its own.
--
-- A queue table's statistics are nearly always stale (thousands of rows arrive and leave
-- between two ANALYZE runs), and with stale estimates the planner tends to read every ready
-- job through a bitmap scan and sort them, which costs milliseconds per claim and grows with
-- the backlog. Walking the ready index in claim order and stopping after `lim` rows is always
-- right for this statement, so sorting and bitmap scans are switched off for it alone.
CREATE OR REPLACE FUNCTION underling_claim(claim_worker BIGINT, claim_queues TEXT[], claim_tasks TEXT[], lim INTEGER)
RETURNS SETOF underling_jobs AS $$
BEGIN
    RETURN QUERY
    UPDATE underling_jobs AS j SET state = 'active', started = now(), worker_id = claim_worker
    WHERE j.id IN (
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
        FOR UPDATE SKIP LOCKED)
    RETURNING j.*;
END;
$$ LANGUAGE plpgsql SET enable_sort = off SET enable_bitmapscan = off SET plan_cache_mode = force_generic_plan;
