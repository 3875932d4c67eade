-- For each queue with jobs that are due at $1 (NULL: now), when the longest-waiting of them
-- fell due, found in index ranges only (no scan of a backlog): the queues by a loose scan of
-- the ready and the delayed index; in each, the first job of every priority in the ready
-- index (a loose scan of priorities: the oldest job of a priority is its lowest id) and the
-- earliest delayed job that is due but not yet promoted. Jobs that wait for parents count.
WITH RECURSIVE ready_queues(queue) AS (
    (SELECT queue FROM underling_jobs
     WHERE state = 'inactive' AND delayed <= GREATEST(created, retried, promoted)
     ORDER BY queue LIMIT 1)
    UNION ALL
    SELECT (SELECT j.queue FROM underling_jobs j
            WHERE j.state = 'inactive' AND j.delayed <= GREATEST(j.created, j.retried, j.promoted)
              AND j.queue > q.queue
            ORDER BY j.queue LIMIT 1)
    FROM ready_queues q WHERE q.queue IS NOT NULL
), delayed_queues(queue) AS (
    (SELECT queue FROM underling_jobs
     WHERE state = 'inactive' AND delayed > GREATEST(created, retried, promoted)
     ORDER BY queue LIMIT 1)
    UNION ALL
    SELECT (SELECT j.queue FROM underling_jobs j
            WHERE j.state = 'inactive' AND j.delayed > GREATEST(j.created, j.retried, j.promoted)
              AND j.queue > q.queue
            ORDER BY j.queue LIMIT 1)
    FROM delayed_queues q WHERE q.queue IS NOT NULL
), queues AS (
    SELECT queue FROM ready_queues WHERE queue IS NOT NULL
    UNION
    SELECT queue FROM delayed_queues WHERE queue IS NOT NULL
)
SELECT q.queue, LEAST(r.oldest, d.oldest) AS oldest
FROM queues q
CROSS JOIN LATERAL (
    WITH RECURSIVE heads(priority, delayed) AS (
        (SELECT priority, delayed FROM underling_jobs
         WHERE state = 'inactive' AND delayed <= GREATEST(created, retried, promoted)
           AND queue = q.queue
         ORDER BY priority DESC, id LIMIT 1)
        UNION ALL
        SELECT n.priority, n.delayed FROM heads h
        CROSS JOIN LATERAL (
            SELECT priority, delayed FROM underling_jobs
            WHERE state = 'inactive' AND delayed <= GREATEST(created, retried, promoted)
              AND queue = q.queue AND priority < h.priority
            ORDER BY priority DESC, id LIMIT 1) n
    )
    SELECT min(delayed) AS oldest FROM heads
) r
CROSS JOIN LATERAL (
    SELECT min(delayed) AS oldest FROM underling_jobs
    WHERE state = 'inactive' AND delayed > GREATEST(created, retried, promoted)
      AND queue = q.queue AND delayed <= COALESCE($1::timestamptz, now())
) d
WHERE LEAST(r.oldest, d.oldest) IS NOT NULL
ORDER BY q.queue
