-- Finished and failed jobs per hour (ms), for the hours from ?1 (ms) on.
SELECT finished / 3600000 * 3600000 AS hour, sum(state = 'finished'), sum(state = 'failed')
FROM underling_jobs
WHERE state IN ('finished', 'failed') AND finished >= ?1
GROUP BY hour
