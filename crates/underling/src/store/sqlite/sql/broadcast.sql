INSERT INTO underling_worker_inbox (worker_id, command, args, sent)
SELECT id, ?1, ?2, ?3 FROM underling_workers
WHERE json_array_length(?4) = 0 OR id IN (SELECT value FROM json_each(?4))
