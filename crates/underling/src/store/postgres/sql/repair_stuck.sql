-- Fails inactive jobs that have been due for more than $1 seconds before $2, counts them in
-- the hour's history (underling_history) and returns how many.
WITH stuck AS (
    UPDATE underling_jobs SET state = 'failed', finished = COALESCE($2::timestamptz, now()),
        result = to_jsonb('Job appears stuck in queue'::text)
    WHERE state = 'inactive'
      AND delayed <= COALESCE($2::timestamptz, now()) - make_interval(secs => $1)
    RETURNING 1
), counted AS (
    INSERT INTO underling_history AS h (hour, shard, failed)
    SELECT date_trunc('hour', COALESCE($2::timestamptz, now()), 'UTC'), pg_backend_pid() % 16,
           count(*)
    FROM stuck HAVING count(*) > 0
    ON CONFLICT (hour, shard) DO UPDATE SET failed = h.failed + EXCLUDED.failed
)
SELECT count(*) FROM stuck
