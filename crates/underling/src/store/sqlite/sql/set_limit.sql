-- Sets a limit: ?1 kind, ?2 name, ?3 concurrency, ?4 rate count, ?5 rate period (ms).
INSERT INTO underling_limits (kind, name, concurrency, rate_count, rate_period_ms)
VALUES (?1, ?2, ?3, ?4, ?5)
ON CONFLICT (kind, name) DO UPDATE SET concurrency = excluded.concurrency,
    rate_count = excluded.rate_count, rate_period_ms = excluded.rate_period_ms
