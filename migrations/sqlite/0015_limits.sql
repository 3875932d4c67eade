-- Exact concurrency and rate limits (see PostgreSQL's 0015_limits.sql for the rules). On
-- SQLite the limited claim is made by the library inside one write transaction (BEGIN
-- IMMEDIATE), which every other writer waits for: the counts it reads are exact.
CREATE TABLE IF NOT EXISTS underling_limits (
    kind TEXT NOT NULL CHECK (kind IN ('queue', 'task', 'args', 'notes')),
    name TEXT NOT NULL,
    concurrency INTEGER CHECK (concurrency > 0),
    rate_count INTEGER CHECK (rate_count > 0),
    rate_period_ms INTEGER CHECK (rate_period_ms > 0),
    PRIMARY KEY (kind, name),
    CHECK (concurrency IS NOT NULL OR rate_count IS NOT NULL),
    CHECK ((rate_count IS NULL) = (rate_period_ms IS NULL))
);

-- Per group with a rate limit: the start times (ms) of its starts within the last period, at
-- most rate_count of them, as a JSON array.
CREATE TABLE IF NOT EXISTS underling_limit_starts (
    grp TEXT PRIMARY KEY,
    starts TEXT NOT NULL
);
