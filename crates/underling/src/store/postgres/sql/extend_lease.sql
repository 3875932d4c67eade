-- Renews the lease of attempt ($1 job, $2 retries) while it holds: it runs out $4 seconds
-- after $3 (NULL: the database's clock). No row: the lease no longer holds.
UPDATE underling_jobs
SET lease_expires = COALESCE($3::timestamptz, now()) + make_interval(secs => $4)
WHERE id = $1 AND retries = $2 AND state = 'active' AND worker_id IS NULL
  AND lease_expires > COALESCE($3::timestamptz, now())
RETURNING lease_expires
