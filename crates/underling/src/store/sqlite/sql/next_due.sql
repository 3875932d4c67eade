-- When the next delayed job of the queues ?1 falls due after ?2 (ms): the first entry after ?2
-- of each queue in the delayed index (a job that was due when it was queued or promoted is
-- due at any later time; only a clock set back before its queuing could see it as delayed,
-- and the poll interval covers that).
SELECT min(c.delayed) FROM underling_jobs c INDEXED BY underling_jobs_queue_delayed
WHERE c.queue IN (SELECT value FROM json_each(?1)) AND c.state = 'inactive'
  AND c.delayed > max(c.created, coalesce(c.retried, 0), coalesce(c.promoted, 0))
  AND c.delayed > ?2
