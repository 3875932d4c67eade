-- The leased attempts whose lease ran out at $1 (NULL: the database's clock), at most 1,000.
-- No lock: a lease that ran out stays so (nothing renews or settles it any more), and the
-- settle that rescues them is guarded by their retry count.
SELECT id, task, retries FROM underling_jobs
WHERE state = 'active' AND worker_id IS NULL
  AND lease_expires <= COALESCE($1::timestamptz, now())
ORDER BY lease_expires
LIMIT 1000
