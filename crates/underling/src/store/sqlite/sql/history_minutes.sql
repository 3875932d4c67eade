-- Finished and failed jobs, and failed attempts, per minute (ms), for the minutes from ?1 (ms)
-- on, from the counters of migration 0017 (underling_history_minutes).
SELECT minute, sum(finished), sum(failed), sum(failed_attempts) FROM underling_history_minutes
WHERE minute >= ?1
GROUP BY minute
