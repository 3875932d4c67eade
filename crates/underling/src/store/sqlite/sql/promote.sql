-- Moves the delayed jobs of the queues ?2 that are due at ?1 (ms) into the ready index (at
-- most 1,000 per call, by range on the delayed index: nothing is read when nothing fell due).
-- Run before a claim; see migrations/sqlite/0004_claims.sql.
UPDATE underling_jobs SET promoted = delayed
WHERE id IN (
    SELECT c.id FROM underling_jobs c INDEXED BY underling_jobs_queue_delayed
    WHERE c.queue IN (SELECT value FROM json_each(?2)) AND c.state = 'inactive'
      AND c.delayed > max(c.created, coalesce(c.retried, 0), coalesce(c.promoted, 0))
      AND c.delayed <= ?1
    LIMIT 1000)
