-- Counts across the store at ?1 (ms); expired jobs are gone. Jobs are counted by counters
-- (counts.sql), workers and locks by rows (there are few).
WITH {counts}
SELECT
    coalesce((SELECT sum(inactive) FROM queue_counts), 0) AS inactive,
    coalesce((SELECT sum(active) FROM queue_counts), 0) AS active,
    coalesce((SELECT sum(finished) FROM queue_counts), 0) AS finished,
    coalesce((SELECT sum(failed) FROM queue_counts), 0) AS failed,
    coalesce((SELECT sum(delayed) FROM queue_counts), 0) AS delayed,
    (SELECT count(DISTINCT worker_id) FROM underling_jobs j WHERE state = 'active'
       AND EXISTS (SELECT 1 FROM underling_workers w WHERE w.id = j.worker_id)) AS busy_workers,
    (SELECT count(*) FROM underling_workers) AS workers,
    (SELECT count(*) FROM underling_locks WHERE expires > ?1) AS locks,
    COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'underling_jobs'), 0) AS enqueued
