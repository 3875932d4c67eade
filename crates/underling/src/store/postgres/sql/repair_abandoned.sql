-- The attempts whose worker is gone, locked until the repair's transaction ends. Leased jobs
-- (active under no worker, with a lease) are not abandoned: they are rescued when their lease
-- runs out (expired_leases.sql).
SELECT j.id, j.task, j.retries FROM underling_jobs j
WHERE j.state = 'active' AND NOT EXISTS (SELECT 1 FROM underling_workers w WHERE w.id = j.worker_id)
  AND NOT (j.worker_id IS NULL AND j.lease_expires IS NOT NULL)
ORDER BY j.id
FOR UPDATE
