-- The number of jobs per queue and class (0009_counts): the counters and the deltas not yet
-- folded into them, read in one snapshot. Used as a CTE by stats, queues and count_states.
counts AS (
    SELECT queue, state, sum(jobs)::bigint AS jobs FROM (
        SELECT queue, state, jobs FROM underling_counts
        UNION ALL
        SELECT queue, state, jobs FROM underling_count_deltas) c
    GROUP BY queue, state
), queue_counts AS (
    -- Per queue at $1: inactive without the expired (gone) ones, and the delayed among them
    -- (deferred jobs not yet due; an expired job is gone whether delayed or not).
    SELECT q.queue,
           COALESCE(sum(jobs) FILTER (WHERE state IN ('inactive', 'deferred')), 0)
             - (SELECT count(*) FROM underling_jobs e
                WHERE e.queue = q.queue AND e.state = 'inactive' AND e.expires IS NOT NULL
                  AND e.expires <= COALESCE($1::timestamptz, now())) AS inactive,
           COALESCE(sum(jobs) FILTER (WHERE state = 'deferred'), 0)
             - (SELECT count(*) FROM underling_jobs d
                WHERE d.queue = q.queue AND d.state = 'inactive'
                  AND d.delayed > GREATEST(d.created, d.retried, d.promoted)
                  AND d.delayed <= COALESCE($1::timestamptz, now()))
             - (SELECT count(*) FROM underling_jobs e
                WHERE e.queue = q.queue AND e.state = 'inactive' AND e.expires IS NOT NULL
                  AND e.expires <= COALESCE($1::timestamptz, now())
                  AND e.delayed > COALESCE($1::timestamptz, now())) AS delayed,
           COALESCE(sum(jobs) FILTER (WHERE state = 'active'), 0) AS active,
           COALESCE(sum(jobs) FILTER (WHERE state = 'finished'), 0) AS finished,
           COALESCE(sum(jobs) FILTER (WHERE state = 'failed'), 0) AS failed
    FROM counts q GROUP BY q.queue
)
