-- Publishes task defaults, replacing earlier ones of the same names. ?1 a JSON array of rows
-- [name, queue, priority, attempts, timeout_ms], ?2 now (ms). (An upsert from a SELECT needs
-- a WHERE clause in SQLite.)
INSERT INTO underling_tasks (name, queue, priority, attempts, timeout_ms, published)
SELECT r.value ->> 0, r.value ->> 1, r.value ->> 2, r.value ->> 3, r.value ->> 4, ?2
FROM json_each(?1) r WHERE true
ON CONFLICT (name) DO UPDATE SET
    queue = excluded.queue, priority = excluded.priority, attempts = excluded.attempts,
    timeout_ms = excluded.timeout_ms, published = excluded.published
