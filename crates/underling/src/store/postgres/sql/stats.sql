-- Counts across the store at $1; expired jobs are gone.
SELECT
    (SELECT count(*) FROM underling_jobs j
      WHERE state = 'inactive' AND NOT underling_gone(j, COALESCE($1::timestamptz, now()))) AS inactive,
    (SELECT count(*) FROM underling_jobs WHERE state = 'active') AS active,
    (SELECT count(*) FROM underling_jobs WHERE state = 'finished') AS finished,
    (SELECT count(*) FROM underling_jobs WHERE state = 'failed') AS failed,
    (SELECT count(*) FROM underling_jobs j
      WHERE state = 'inactive' AND delayed > COALESCE($1::timestamptz, now())
        AND NOT underling_gone(j, COALESCE($1::timestamptz, now()))) AS delayed,
    (SELECT count(DISTINCT worker_id) FROM underling_jobs j WHERE state = 'active'
       AND EXISTS (SELECT 1 FROM underling_workers w WHERE w.id = j.worker_id)) AS busy_workers,
    (SELECT count(*) FROM underling_workers) AS workers,
    (SELECT count(*) FROM underling_locks WHERE expires > COALESCE($1::timestamptz, now())) AS locks,
    (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM underling_jobs_id_seq) AS enqueued,
    extract(epoch FROM now() - pg_postmaster_start_time())::bigint AS uptime
