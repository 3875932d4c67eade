-- Puts a lease running out at ?1 (ms) on the jobs ?2 (a JSON array of ids) just claimed.
UPDATE underling_jobs SET lease_expires = ?1 WHERE id IN (SELECT value FROM json_each(?2))
