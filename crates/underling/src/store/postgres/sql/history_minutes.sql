-- Finished and failed jobs, and failed attempts, per minute over the 60 minutes up to $1 (the
-- current minute last), from the counters of migration 0017 (underling_history_minutes): at
-- most 16 small rows a minute, however many jobs are stored.
WITH t AS (SELECT date_trunc('minute', COALESCE($1::timestamptz, now())) AS current)
SELECT m.minute,
       COALESCE(sum(c.finished), 0)::bigint,
       COALESCE(sum(c.failed), 0)::bigint,
       COALESCE(sum(c.failed_attempts), 0)::bigint
FROM t, generate_series(t.current - interval '59 minutes', t.current, interval '1 minute') AS m(minute)
LEFT JOIN underling_history_minutes c ON c.minute = m.minute
GROUP BY m.minute ORDER BY m.minute
