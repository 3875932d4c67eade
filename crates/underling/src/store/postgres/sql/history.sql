-- Finished and failed jobs, and failed attempts (retried or not), per hour over the 24 hours
-- up to $1.
WITH t AS (SELECT date_trunc('hour', COALESCE($1::timestamptz, now()), 'UTC') AS current)
SELECT h.hour,
       count(j.id) FILTER (WHERE j.state = 'finished'),
       count(j.id) FILTER (WHERE j.state = 'failed'),
       COALESCE((SELECT f.attempts FROM underling_failed_attempts f WHERE f.hour = h.hour), 0)
FROM t, generate_series(t.current - interval '23 hours', t.current, interval '1 hour') AS h(hour)
LEFT JOIN underling_jobs j
  ON j.finished >= h.hour AND j.finished < h.hour + interval '1 hour'
 AND j.state IN ('finished', 'failed')
GROUP BY h.hour ORDER BY h.hour
