-- Sets a limit: $1 kind, $2 name, $3 concurrency, $4 rate count, $5 rate period (ms), $6 the
-- wake-up channel (workers are woken: the limit may let more jobs start).
WITH up AS (
    INSERT INTO underling_limits (kind, name, concurrency, rate_count, rate_period_ms)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (kind, name) DO UPDATE SET concurrency = excluded.concurrency,
        rate_count = excluded.rate_count, rate_period_ms = excluded.rate_period_ms
)
SELECT pg_notify($6, '*')
