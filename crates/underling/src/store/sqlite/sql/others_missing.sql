-- Whether a worker other than ?1 last heartbeat more than ?3 ms before ?2 (ms).
SELECT EXISTS (SELECT 1 FROM underling_workers WHERE id <> ?1 AND notified < ?2 - ?3)
