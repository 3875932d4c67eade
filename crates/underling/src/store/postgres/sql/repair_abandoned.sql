-- The attempts whose worker is gone, locked until the repair's transaction ends.
SELECT j.id, j.task, j.retries FROM underling_jobs j
WHERE j.state = 'active' AND NOT EXISTS (SELECT 1 FROM underling_workers w WHERE w.id = j.worker_id)
ORDER BY j.id
FOR UPDATE
