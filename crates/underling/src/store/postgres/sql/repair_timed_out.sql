-- Active jobs that have run longer than their timeout (their own, else their task's as its
-- workers published it) plus $1 seconds at $2, even on a live worker: id, task, retries and
-- the timeout (ms), locked until the repair's transaction ends. Read through the partial index
-- of active jobs (0001), never the whole table.
SELECT j.id, j.task, j.retries, COALESCE(j.timeout_ms, t.timeout_ms) AS timeout_ms
FROM underling_jobs j LEFT JOIN underling_tasks t ON t.name = j.task
WHERE j.state = 'active' AND j.worker_id IS NOT NULL
  AND COALESCE(j.timeout_ms, t.timeout_ms) IS NOT NULL
  AND j.started + make_interval(secs => COALESCE(j.timeout_ms, t.timeout_ms) / 1000.0 + $1)
      <= COALESCE($2::timestamptz, now())
ORDER BY j.id
FOR UPDATE OF j
