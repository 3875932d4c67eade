-- Claims one job by id if it is ready, ignoring its queue and pauses.
-- $1 worker, $2 job, $3 now (NULL: the database's clock).
UPDATE underling_jobs AS j SET state = 'active', started = COALESCE($3::timestamptz, now()), worker_id = $1
WHERE j.id = (
    SELECT c.id FROM underling_jobs c
    WHERE c.id = $2 AND underling_ready(c, COALESCE($3::timestamptz, now()))
    FOR UPDATE SKIP LOCKED)
RETURNING {job_columns}
