-- Claims up to ?5 ready jobs of the queues ?3 (and tasks ?4 when not empty) for worker ?2, at
-- ?1 (ms), in priority then id order across the queues. Each queue that is not paused is
-- walked on its own in the ready index (queue, priority DESC, id), in claim order, for at
-- most ?5 jobs (the correlated list subquery, one index range per queue: other queues'
-- backlogs and delayed jobs are never read); the first ?5 of those are claimed. Delayed jobs
-- that fell due were moved into that index by promote.sql just before. `INDEXED BY`: the
-- index is already in claim order, and a plan that reads every waiting job of the queue
-- through another index and sorts them would be many times slower. One statement takes
-- SQLite's write lock before it reads, so no job is handed out twice.
UPDATE underling_jobs AS j SET state = 'active', started = ?1, worker_id = ?2
WHERE j.id IN (
    SELECT pick.id FROM (SELECT DISTINCT value AS name FROM json_each(?3)) q
    JOIN underling_jobs pick ON pick.id IN (
        SELECT c.id FROM underling_jobs c INDEXED BY underling_jobs_queue_ready
        WHERE c.queue = q.name AND c.state = 'inactive'
          AND c.delayed <= max(c.created, coalesce(c.retried, 0), coalesce(c.promoted, 0))
          AND (json_array_length(?4) = 0 OR c.task IN (SELECT value FROM json_each(?4)))
          AND {ready}
        ORDER BY c.priority DESC, c.id
        LIMIT ?5)
    WHERE NOT EXISTS (SELECT 1 FROM underling_queues p WHERE p.name = q.name AND p.paused)
    ORDER BY pick.priority DESC, pick.id
    LIMIT ?5)
RETURNING {returning_columns}
