-- Adds to the history of the hour of ?1 (ms): ?2 finished jobs, ?3 failed jobs, ?4 failed
-- attempts.
INSERT INTO underling_history (hour, shard, finished, failed, failed_attempts)
VALUES (?1 / 3600000 * 3600000, 0, ?2, ?3, ?4)
ON CONFLICT (hour, shard) DO UPDATE SET
    finished = finished + excluded.finished,
    failed = failed + excluded.failed,
    failed_attempts = failed_attempts + excluded.failed_attempts
