-- Removes the workers whose last heartbeat is older than ?2 ms before ?1 (ms).
DELETE FROM underling_workers WHERE notified < ?1 - ?2
