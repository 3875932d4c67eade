-- Removes the jobs of $1 that are still inactive and expired before $2 (now when null).
DELETE FROM underling_jobs
WHERE id = ANY($1) AND state = 'inactive' AND expires <= COALESCE($2::timestamptz, now())
