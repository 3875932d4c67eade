-- History by counters, not scans: finished and failed jobs and failed attempts per hour (ms)
-- are counted by the statements that settle them (the settle, repair's stuck jobs), so that
-- `history` reads at most 24 small rows however many jobs the table holds, and an hour's
-- figures survive `job purge` and repair's removal of old jobs. The failed attempts that 0006
-- counted with a trigger are counted here too, and the trigger goes. (`shard` is always 0
-- here: SQLite has one writer at a time; the column keeps the table alike on both backends.)
CREATE TABLE IF NOT EXISTS underling_history (
    hour            INTEGER NOT NULL,
    shard           INTEGER NOT NULL,
    finished        INTEGER NOT NULL DEFAULT 0,
    failed          INTEGER NOT NULL DEFAULT 0,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, shard)
);

-- What the last 24 hours held before counting began: jobs that ended then (as far as they are
-- still stored) and the failed attempts 0006 counted.
INSERT INTO underling_history (hour, shard, finished, failed, failed_attempts)
SELECT hour, 1, sum(finished), sum(failed), sum(failed_attempts) FROM (
    SELECT finished / 3600000 * 3600000 AS hour, state = 'finished' AS finished,
           state = 'failed' AS failed, 0 AS failed_attempts
    FROM underling_jobs
    WHERE state IN ('finished', 'failed')
      AND finished >= (unixepoch('now') - 25 * 3600) * 1000
    UNION ALL
    SELECT hour, 0, 0, attempts FROM underling_failed_attempts
    WHERE hour >= (unixepoch('now') - 25 * 3600) * 1000
)
GROUP BY hour
ON CONFLICT (hour, shard) DO NOTHING;

DROP TRIGGER IF EXISTS underling_jobs_failed_attempt;
DROP TABLE IF EXISTS underling_failed_attempts;
