-- Finished and failed jobs, and failed attempts (retried or not), per hour over the 24 hours
-- up to $1, from the counters the settling statements keep (underling_history): at most 16
-- small rows an hour, however many jobs are stored, and kept when jobs are purged.
WITH t AS (SELECT date_trunc('hour', COALESCE($1::timestamptz, now()), 'UTC') AS current)
SELECT h.hour,
       COALESCE(sum(c.finished), 0)::bigint,
       COALESCE(sum(c.failed), 0)::bigint,
       COALESCE(sum(c.failed_attempts), 0)::bigint
FROM t, generate_series(t.current - interval '23 hours', t.current, interval '1 hour') AS h(hour)
LEFT JOIN underling_history c ON c.hour = h.hour
GROUP BY h.hour ORDER BY h.hour
