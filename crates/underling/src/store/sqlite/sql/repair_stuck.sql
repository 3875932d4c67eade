-- Fails inactive jobs that have been due for more than ?2 ms before ?1 (ms). The jobs are
-- looked for in the two partial indexes of waiting jobs (0004_claims), whose predicates the
-- two branches repeat, so that repair reads the waiting jobs only, never the whole table.
UPDATE underling_jobs SET state = 'failed', finished = ?1, result = '"Job appears stuck in queue"'
WHERE id IN (
    SELECT id FROM underling_jobs
    WHERE state = 'inactive'
      AND delayed <= max(created, coalesce(retried, 0), coalesce(promoted, 0))
      AND delayed <= ?1 - ?2
    UNION ALL
    SELECT id FROM underling_jobs
    WHERE state = 'inactive'
      AND delayed > max(created, coalesce(retried, 0), coalesce(promoted, 0))
      AND delayed <= ?1 - ?2)
  AND state = 'inactive' AND delayed <= ?1 - ?2
