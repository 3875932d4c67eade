-- $1 queue, $2 FIFO on or off, $3 the wake-up channel (workers are woken: the line may have
-- moved), $4 now. Turning FIFO off lets go of the line's holder.
WITH up AS (
    INSERT INTO underling_queues (name, fifo, updated) VALUES ($1, $2, COALESCE($4::timestamptz, now()))
    ON CONFLICT (name) DO UPDATE
    SET fifo = excluded.fifo, updated = excluded.updated,
        fifo_holder = CASE WHEN excluded.fifo THEN underling_queues.fifo_holder END
)
SELECT pg_notify($3, $1)
