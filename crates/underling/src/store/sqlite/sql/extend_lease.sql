-- Renews the lease of attempt (?1 job, ?2 retries) while it holds at ?3 (ms): it runs out at
-- ?4 (ms). No row: the lease no longer holds.
UPDATE underling_jobs SET lease_expires = ?4
WHERE id = ?1 AND retries = ?2 AND state = 'active' AND worker_id IS NULL AND lease_expires > ?3
RETURNING lease_expires
