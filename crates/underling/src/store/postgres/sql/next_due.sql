-- When the next delayed job of the queues falls due. $1 queues, $2 now. The first entry after
-- now of each queue in the delayed index (migrations/postgres/0004_claims.sql): a job that was
-- due when it was queued or promoted is due at any later time; only a time given from before
-- its queuing could see it as delayed, and the poll interval covers that.
SELECT min(d.delayed) FROM unnest($1::text[]) AS q(name)
CROSS JOIN LATERAL (
    SELECT c.delayed FROM underling_jobs c
    WHERE c.queue = q.name AND c.state = 'inactive'
      AND c.delayed > GREATEST(c.created, c.retried, c.promoted)
      AND c.delayed > COALESCE($2::timestamptz, now())
    ORDER BY c.delayed
    LIMIT 1) AS d
