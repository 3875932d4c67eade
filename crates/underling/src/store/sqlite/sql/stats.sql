-- Counts across the store at ?1 (ms); expired jobs are gone.
SELECT
    (SELECT count(*) FROM underling_jobs j WHERE state = 'inactive' AND NOT (j.state = 'inactive' AND j.expires IS NOT NULL AND j.expires <= ?1)) AS inactive,
    (SELECT count(*) FROM underling_jobs WHERE state = 'active') AS active,
    (SELECT count(*) FROM underling_jobs WHERE state = 'finished') AS finished,
    (SELECT count(*) FROM underling_jobs WHERE state = 'failed') AS failed,
    (SELECT count(*) FROM underling_jobs j WHERE state = 'inactive' AND delayed > ?1
       AND NOT (j.state = 'inactive' AND j.expires IS NOT NULL AND j.expires <= ?1)) AS delayed,
    (SELECT count(DISTINCT worker_id) FROM underling_jobs j WHERE state = 'active'
       AND EXISTS (SELECT 1 FROM underling_workers w WHERE w.id = j.worker_id)) AS busy_workers,
    (SELECT count(*) FROM underling_workers) AS workers,
    (SELECT count(*) FROM underling_locks WHERE expires > ?1) AS locks,
    COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'underling_jobs'), 0) AS enqueued
