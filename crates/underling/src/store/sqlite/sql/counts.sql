-- Per queue at ?1 (ms), from the counters of 0009_counts: inactive without the expired (gone)
-- ones, and the delayed among them (deferred jobs not yet due, without the expired ones).
queue_counts AS (
    SELECT q.queue,
           coalesce(sum(jobs) FILTER (WHERE state IN ('inactive', 'deferred')), 0)
             - (SELECT count(*) FROM underling_jobs e
                WHERE e.queue = q.queue AND e.state = 'inactive' AND e.expires IS NOT NULL
                  AND e.expires <= ?1) AS inactive,
           coalesce(sum(jobs) FILTER (WHERE state = 'deferred'), 0)
             - (SELECT count(*) FROM underling_jobs d
                WHERE d.queue = q.queue AND d.state = 'inactive'
                  AND d.delayed > max(d.created, coalesce(d.retried, 0), coalesce(d.promoted, 0))
                  AND d.delayed <= ?1)
             - (SELECT count(*) FROM underling_jobs e
                WHERE e.queue = q.queue AND e.state = 'inactive' AND e.expires IS NOT NULL
                  AND e.expires <= ?1 AND e.delayed > ?1) AS delayed,
           coalesce(sum(jobs) FILTER (WHERE state = 'active'), 0) AS active,
           coalesce(sum(jobs) FILTER (WHERE state = 'finished'), 0) AS finished,
           coalesce(sum(jobs) FILTER (WHERE state = 'failed'), 0) AS failed
    FROM underling_counts q GROUP BY q.queue
)
