-- $1 queue, $2 paused, $3 the wake-up channel (workers are woken on resume), $4 now.
WITH up AS (
    INSERT INTO underling_queues (name, paused, updated) VALUES ($1, $2, COALESCE($4::timestamptz, now()))
    ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, updated = excluded.updated
)
SELECT pg_notify($3, $1) WHERE NOT $2
