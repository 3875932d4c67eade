-- One job without parents and without a wake-up (a catch-up wake-up follows the commit).
-- Parameters as in enqueue_one.sql, without the channel: $11 is now, $12 the timeout (ms).
INSERT INTO underling_jobs (task, args, queue, priority, attempts, created, delayed, expires, lax, notes, timeout_ms)
SELECT $1, $2, $3, $4, $5, t.at,
       COALESCE($6, t.at + make_interval(secs => COALESCE($7, 0))),
       CASE WHEN $8::float8 IS NULL THEN NULL ELSE t.at + make_interval(secs => $8) END,
       $9, $10, $12
FROM (SELECT COALESCE($11::timestamptz, now()) AS at) t
RETURNING id
