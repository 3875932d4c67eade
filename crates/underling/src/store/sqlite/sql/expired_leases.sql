-- The leased attempts whose lease ran out at ?1 (ms), at most 1,000.
SELECT id, task, retries FROM underling_jobs
WHERE state = 'active' AND worker_id IS NULL AND lease_expires <= ?1
ORDER BY lease_expires
LIMIT 1000
