-- Publishes task defaults, replacing earlier ones of the same names. $1 names, $2 queues,
-- $3 priorities, $4 attempts, $5 timeouts (ms), $6 now.
INSERT INTO underling_tasks (name, queue, priority, attempts, timeout_ms, published)
SELECT n, q, p, a, t, COALESCE($6::timestamptz, now())
FROM unnest($1::text[], $2::text[], $3::int[], $4::int[], $5::bigint[]) AS u(n, q, p, a, t)
ON CONFLICT (name) DO UPDATE SET
    queue = EXCLUDED.queue, priority = EXCLUDED.priority, attempts = EXCLUDED.attempts,
    timeout_ms = EXCLUDED.timeout_ms, published = EXCLUDED.published
