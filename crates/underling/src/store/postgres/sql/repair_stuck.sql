-- Fails inactive jobs that have been due for more than $1 seconds before $2.
UPDATE underling_jobs SET state = 'failed', finished = COALESCE($2::timestamptz, now()),
    result = to_jsonb('Job appears stuck in queue'::text)
WHERE state = 'inactive' AND delayed <= COALESCE($2::timestamptz, now()) - make_interval(secs => $1)
