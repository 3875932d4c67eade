-- Claims that do not see other queues' backlogs or delayed jobs: the same split as PostgreSQL's
-- 0004_claims.sql (see there for why). The ready index of 0001 (priority DESC, id) held every
-- waiting job of every queue, due or not; it is replaced by two partial indexes that each
-- waiting job is in exactly one of:
--
-- * underling_jobs_queue_ready (queue, priority DESC, id): jobs that were due when they were
--   last queued (enqueued, retried) or promoted; a claim walks it once per claimed queue.
-- * underling_jobs_queue_delayed (queue, delayed): jobs queued for a later time, found by range
--   when they fall due and then promoted (`promoted` set to their due time).
--
-- SQLite's max() of several values is NULL when one is, hence the COALESCEs (times are
-- milliseconds, never negative).
ALTER TABLE underling_jobs ADD COLUMN promoted INTEGER;

CREATE INDEX IF NOT EXISTS underling_jobs_queue_ready
    ON underling_jobs (queue, priority DESC, id)
    WHERE state = 'inactive'
      AND delayed <= max(created, coalesce(retried, 0), coalesce(promoted, 0));
CREATE INDEX IF NOT EXISTS underling_jobs_queue_delayed
    ON underling_jobs (queue, delayed)
    WHERE state = 'inactive'
      AND delayed > max(created, coalesce(retried, 0), coalesce(promoted, 0));
DROP INDEX IF EXISTS underling_jobs_ready;
