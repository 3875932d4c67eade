-- Records the job a tick (or a run now) enqueued, in the transaction that enqueued it.
UPDATE underling_schedules SET last_run = $2, last_job_id = $3 WHERE name = $1
