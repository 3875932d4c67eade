-- Finished and failed jobs, and failed attempts (retried or not), per hour (ms), for the hours
-- from ?1 (ms) on.
SELECT hour, sum(finished), sum(failed), sum(attempts) FROM (
    SELECT finished / 3600000 * 3600000 AS hour, state = 'finished' AS finished,
           state = 'failed' AS failed, 0 AS attempts
    FROM underling_jobs
    WHERE state IN ('finished', 'failed') AND finished >= ?1
    UNION ALL
    SELECT hour, 0, 0, attempts FROM underling_failed_attempts WHERE hour >= ?1
)
GROUP BY hour
