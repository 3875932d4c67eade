-- Fails inactive jobs that have been due for more than $1 seconds before $2, counts them in
-- the hour's history (underling_history) and returns how many. The jobs are looked for in the
-- two partial indexes of waiting jobs (0004_claims), whose predicates the two branches repeat,
-- so that repair reads the waiting jobs only, never the whole table with its finished rows.
WITH stuck AS (
    UPDATE underling_jobs SET state = 'failed', finished = COALESCE($2::timestamptz, now()),
        result = to_jsonb('Job appears stuck in queue'::text)
    WHERE id IN (
        SELECT id FROM underling_jobs
        WHERE state = 'inactive' AND delayed <= GREATEST(created, retried, promoted)
          AND delayed <= COALESCE($2::timestamptz, now()) - make_interval(secs => $1)
        UNION ALL
        SELECT id FROM underling_jobs
        WHERE state = 'inactive' AND delayed > GREATEST(created, retried, promoted)
          AND delayed <= COALESCE($2::timestamptz, now()) - make_interval(secs => $1))
      AND state = 'inactive'
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
