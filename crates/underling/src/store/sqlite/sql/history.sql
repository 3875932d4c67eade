-- Finished and failed jobs, and failed attempts (retried or not), per hour (ms), for the hours
-- from ?1 (ms) on, from the counters the settling statements keep.
SELECT hour, sum(finished), sum(failed), sum(failed_attempts) FROM underling_history
WHERE hour >= ?1
GROUP BY hour
