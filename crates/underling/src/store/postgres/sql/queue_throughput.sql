-- Jobs that ended per queue over the hour and over the five minutes up to $1 (the current
-- minute included), from the counters of migration 0017 (underling_queue_minutes).
WITH t AS (SELECT date_trunc('minute', COALESCE($1::timestamptz, now())) AS current)
SELECT q.queue,
       sum(q.finished)::bigint,
       sum(q.failed)::bigint,
       COALESCE(sum(q.finished) FILTER (WHERE q.minute > t.current - interval '5 minutes'), 0)::bigint,
       COALESCE(sum(q.failed) FILTER (WHERE q.minute > t.current - interval '5 minutes'), 0)::bigint
FROM t, underling_queue_minutes q
WHERE q.minute > t.current - interval '60 minutes' AND q.minute <= t.current
GROUP BY q.queue
ORDER BY q.queue
