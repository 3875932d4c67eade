-- Audit entries, newest first: $1 only this job (NULL: all), $2 only ids below (NULL: from
-- the newest), $3 at most this many.
SELECT id, at, event, job FROM underling_audit
WHERE ($1::bigint IS NULL OR job_id = $1) AND ($2::bigint IS NULL OR id < $2)
ORDER BY id DESC
LIMIT $3
