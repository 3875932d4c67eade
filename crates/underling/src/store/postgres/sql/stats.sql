-- Counts across the store at $1; expired jobs are gone. Jobs are counted by counters
-- (counts.sql), workers and locks by rows (there are few).
WITH {counts}
SELECT
    COALESCE((SELECT sum(inactive) FROM queue_counts), 0)::bigint AS inactive,
    COALESCE((SELECT sum(active) FROM queue_counts), 0)::bigint AS active,
    COALESCE((SELECT sum(finished) FROM queue_counts), 0)::bigint AS finished,
    COALESCE((SELECT sum(failed) FROM queue_counts), 0)::bigint AS failed,
    COALESCE((SELECT sum(delayed) FROM queue_counts), 0)::bigint AS delayed,
    (SELECT count(DISTINCT worker_id) FROM underling_jobs j WHERE state = 'active'
       AND EXISTS (SELECT 1 FROM underling_workers w WHERE w.id = j.worker_id)) AS busy_workers,
    (SELECT count(*) FROM underling_workers) AS workers,
    (SELECT count(*) FROM underling_locks WHERE expires > COALESCE($1::timestamptz, now())) AS locks,
    (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM underling_jobs_id_seq) AS enqueued,
    extract(epoch FROM now() - pg_postmaster_start_time())::bigint AS uptime
