-- Every queue with jobs or a pause flag, with counts per state at ?1 (expired jobs are gone).
WITH c AS (
    SELECT queue AS name,
           sum(state = 'inactive' AND NOT (j.state = 'inactive' AND j.expires IS NOT NULL AND j.expires <= ?1)) AS inactive, sum(state = 'active') AS active,
           sum(state = 'failed') AS failed, sum(state = 'finished') AS finished
    FROM underling_jobs j GROUP BY queue
), names AS (SELECT name FROM c UNION SELECT name FROM underling_queues)
SELECT n.name, COALESCE(q.paused, 0), COALESCE(c.inactive, 0),
       COALESCE(c.active, 0), COALESCE(c.failed, 0), COALESCE(c.finished, 0)
FROM names n LEFT JOIN c ON c.name = n.name
LEFT JOIN underling_queues q ON q.name = n.name ORDER BY n.name
