-- Gives back attempts a worker claimed and never started: inactive again, attempt unused, and
-- their queues' workers woken. $1 ids, $2 retries, $3 worker, $4 the wake-up channel.
WITH upd AS (
    UPDATE underling_jobs AS j SET state = 'inactive', started = NULL, worker_id = NULL
    FROM unnest($1::bigint[], $2::int[]) AS i(id, retries)
    WHERE j.id = i.id AND j.retries = i.retries AND j.state = 'active' AND j.worker_id = $3
    RETURNING j.queue
), wake AS (
    SELECT pg_notify($4, q.queue) FROM (SELECT DISTINCT queue FROM upd) q
)
SELECT count(*) FROM upd WHERE (SELECT count(*) FROM wake) >= 0
