-- The job ?2 holding a FIFO line, if it is ready at ?1 (ms).
SELECT c.id, c.queue, c.task, c.args, c.notes FROM underling_jobs c
WHERE c.id = ?2 AND c.delayed <= max(c.created, coalesce(c.retried, 0), coalesce(c.promoted, 0))
  AND {ready}
