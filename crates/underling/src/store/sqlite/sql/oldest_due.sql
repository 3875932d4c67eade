-- For each queue with inactive jobs due at $1 (ms), when the longest-waiting of them fell due
-- (a scan of the inactive jobs: SQLite stores hold small backlogs).
SELECT queue, min(delayed) FROM underling_jobs
WHERE state = 'inactive' AND delayed <= $1
GROUP BY queue ORDER BY queue
