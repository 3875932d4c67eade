-- ?1 queue, ?2 FIFO on or off, ?3 now (ms). Turning FIFO off lets go of the line's holder.
INSERT INTO underling_queues (name, fifo, updated) VALUES (?1, ?2, ?3)
ON CONFLICT (name) DO UPDATE
SET fifo = excluded.fifo, updated = excluded.updated,
    fifo_holder = CASE WHEN excluded.fifo THEN underling_queues.fifo_holder END
