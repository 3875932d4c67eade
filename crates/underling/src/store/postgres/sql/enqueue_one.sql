-- One job without parents, and the wake-up of its queue's workers (at commit). A delayed job
-- wakes them too: an idle worker then learns when it falls due and waits for that moment.
-- $1 task, $2 args, $3 queue, $4 priority, $5 attempts, $6 run_at, $7 delay (s), $8 expire (s),
-- $9 lax, $10 notes, $11 the wake-up channel, $12 now (NULL: the database's clock), $13 the
-- job's timeout (ms).
WITH ins AS (
    INSERT INTO underling_jobs (task, args, queue, priority, attempts, created, delayed, expires, lax, notes, timeout_ms)
    SELECT $1, $2, $3, $4, $5, t.at,
           COALESCE($6, t.at + make_interval(secs => COALESCE($7, 0))),
           CASE WHEN $8::float8 IS NULL THEN NULL ELSE t.at + make_interval(secs => $8) END,
           $9, $10, $13
    FROM (SELECT COALESCE($12::timestamptz, now()) AS at) t
    RETURNING id, queue, delayed, created
), wake AS (
    SELECT pg_notify($11, queue) FROM ins
)
SELECT id FROM ins WHERE (SELECT count(*) FROM wake) >= 0
