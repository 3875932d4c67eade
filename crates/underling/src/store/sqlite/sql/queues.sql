-- Every queue with jobs or a row of its own (paused, FIFO), with counts per state at ?1 (expired jobs are gone),
-- from the counters (counts.sql).
WITH {counts}, c AS (
    SELECT queue AS name, inactive, active, failed, finished FROM queue_counts
    WHERE inactive <> 0 OR active <> 0 OR failed <> 0 OR finished <> 0
), names AS (SELECT name FROM c UNION SELECT name FROM underling_queues)
SELECT n.name, COALESCE(q.paused, 0), COALESCE(q.fifo, 0), COALESCE(c.inactive, 0),
       COALESCE(c.active, 0), COALESCE(c.failed, 0), COALESCE(c.finished, 0)
FROM names n LEFT JOIN c ON c.name = n.name
LEFT JOIN underling_queues q ON q.name = n.name ORDER BY n.name
