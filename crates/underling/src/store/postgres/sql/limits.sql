-- Every limit, by kind and name.
SELECT kind, name, concurrency, rate_count, rate_period_ms FROM underling_limits ORDER BY kind, name
