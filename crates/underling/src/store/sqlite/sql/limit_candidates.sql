-- The first ?4 ready jobs of the queues ?2 (and tasks ?3 when not empty) at ?1 (ms), in claim
-- order, walked as claim.sql walks them, for the limited claim to pick from.
SELECT pick.id, pick.queue, pick.task, pick.args, pick.notes
FROM (SELECT DISTINCT value AS name FROM json_each(?2)) q
JOIN underling_jobs pick ON pick.id IN (
    SELECT c.id FROM underling_jobs c INDEXED BY underling_jobs_queue_ready
    WHERE c.queue = q.name AND c.state = 'inactive'
      AND c.delayed <= max(c.created, coalesce(c.retried, 0), coalesce(c.promoted, 0))
      AND (json_array_length(?3) = 0 OR c.task IN (SELECT value FROM json_each(?3)))
      AND {ready}
    ORDER BY c.priority DESC, c.id
    LIMIT ?4)
WHERE NOT EXISTS (SELECT 1 FROM underling_queues p WHERE p.name = q.name AND p.paused)
ORDER BY pick.priority DESC, pick.id
LIMIT ?4
