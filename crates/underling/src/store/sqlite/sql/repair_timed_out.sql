-- Active jobs that have run longer than their timeout (their own, else their task's as its
-- workers published it) plus ?2 ms at ?1 (ms), even on a live worker: id, task, retries and
-- the timeout (ms). Read through the partial index of active jobs (0001).
SELECT j.id, j.task, j.retries, coalesce(j.timeout_ms, t.timeout_ms) AS timeout_ms
FROM underling_jobs j LEFT JOIN underling_tasks t ON t.name = j.task
WHERE j.state = 'active' AND j.worker_id IS NOT NULL
  AND coalesce(j.timeout_ms, t.timeout_ms) IS NOT NULL
  AND j.started + coalesce(j.timeout_ms, t.timeout_ms) + ?2 <= ?1
ORDER BY j.id
