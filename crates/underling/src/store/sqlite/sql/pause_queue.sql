INSERT INTO underling_queues (name, paused, updated) VALUES (?1, ?2, ?3)
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, updated = excluded.updated
