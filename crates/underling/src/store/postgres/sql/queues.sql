-- Every queue with jobs or a row of its own (paused, FIFO), with counts per state at $1 (expired jobs are gone),
-- from the counters (counts.sql).
WITH {counts}
SELECT n.name, COALESCE(q.paused, false), COALESCE(q.fifo, false),
       COALESCE(c.inactive, 0)::bigint, COALESCE(c.active, 0)::bigint,
       COALESCE(c.failed, 0)::bigint, COALESCE(c.finished, 0)::bigint
FROM (SELECT * FROM queue_counts
      WHERE inactive <> 0 OR active <> 0 OR failed <> 0 OR finished <> 0) c
FULL JOIN underling_queues q ON q.name = c.queue
CROSS JOIN LATERAL (SELECT COALESCE(c.queue, q.name) AS name) n
ORDER BY n.name
