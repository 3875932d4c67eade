-- Throughput for the web UI, by counters, not scans: jobs that ended per minute (all queues,
-- and per queue) over the last hour.
--
-- Finished and failed jobs and failed attempts per minute (ms), for the dashboard's chart of
-- the last hour. Counters, not scans, as for the hours of 0007: triggers on the hourly counters
-- (underling_history) add each change of an hour's row to the current minute's row, in the
-- same transaction, so that every statement that counts settles is counted here too without
-- being changed. The minute is the database's clock. Minutes older than two hours are removed
-- as each new minute begins. (`shard` is always 0, as in underling_history.)
CREATE TABLE IF NOT EXISTS underling_history_minutes (
    minute          INTEGER NOT NULL,
    shard           INTEGER NOT NULL,
    finished        INTEGER NOT NULL DEFAULT 0,
    failed          INTEGER NOT NULL DEFAULT 0,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (minute, shard)
);

CREATE TRIGGER IF NOT EXISTS underling_history_minutes_insert AFTER INSERT ON underling_history
BEGIN
    DELETE FROM underling_history_minutes
    WHERE minute < unixepoch('now') / 60 * 60000 - 7200000
      AND NOT EXISTS (SELECT 1 FROM underling_history_minutes
                      WHERE minute = unixepoch('now') / 60 * 60000);
    INSERT INTO underling_history_minutes (minute, shard, finished, failed, failed_attempts)
    VALUES (unixepoch('now') / 60 * 60000, 0, NEW.finished, NEW.failed, NEW.failed_attempts)
    ON CONFLICT (minute, shard) DO UPDATE SET
        finished = finished + excluded.finished,
        failed = failed + excluded.failed,
        failed_attempts = failed_attempts + excluded.failed_attempts;
END;

CREATE TRIGGER IF NOT EXISTS underling_history_minutes_update AFTER UPDATE ON underling_history
BEGIN
    DELETE FROM underling_history_minutes
    WHERE minute < unixepoch('now') / 60 * 60000 - 7200000
      AND NOT EXISTS (SELECT 1 FROM underling_history_minutes
                      WHERE minute = unixepoch('now') / 60 * 60000);
    INSERT INTO underling_history_minutes (minute, shard, finished, failed, failed_attempts)
    VALUES (unixepoch('now') / 60 * 60000, 0, NEW.finished - OLD.finished,
            NEW.failed - OLD.failed, NEW.failed_attempts - OLD.failed_attempts)
    ON CONFLICT (minute, shard) DO UPDATE SET
        finished = finished + excluded.finished,
        failed = failed + excluded.failed,
        failed_attempts = failed_attempts + excluded.failed_attempts;
END;

-- Jobs that ended per queue and minute (ms), for each queue's throughput on the queues page:
-- triggers on the counters of 0009 (kept by the count triggers on the jobs) add each rise of a
-- queue's 'finished' or 'failed' count to the current minute's row of the queue.
CREATE TABLE IF NOT EXISTS underling_queue_minutes (
    minute   INTEGER NOT NULL,
    queue    TEXT    NOT NULL,
    shard    INTEGER NOT NULL,
    finished INTEGER NOT NULL DEFAULT 0,
    failed   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (minute, queue, shard)
);

CREATE TRIGGER IF NOT EXISTS underling_queue_minutes_insert AFTER INSERT ON underling_counts
WHEN NEW.state IN ('finished', 'failed') AND NEW.jobs > 0
BEGIN
    DELETE FROM underling_queue_minutes
    WHERE minute < unixepoch('now') / 60 * 60000 - 7200000
      AND NOT EXISTS (SELECT 1 FROM underling_queue_minutes
                      WHERE minute = unixepoch('now') / 60 * 60000);
    INSERT INTO underling_queue_minutes (minute, queue, shard, finished, failed)
    VALUES (unixepoch('now') / 60 * 60000, NEW.queue, 0,
            CASE WHEN NEW.state = 'finished' THEN NEW.jobs ELSE 0 END,
            CASE WHEN NEW.state = 'failed' THEN NEW.jobs ELSE 0 END)
    ON CONFLICT (minute, queue, shard) DO UPDATE SET
        finished = finished + excluded.finished,
        failed = failed + excluded.failed;
END;

CREATE TRIGGER IF NOT EXISTS underling_queue_minutes_update AFTER UPDATE ON underling_counts
WHEN NEW.state IN ('finished', 'failed') AND NEW.jobs > OLD.jobs
BEGIN
    DELETE FROM underling_queue_minutes
    WHERE minute < unixepoch('now') / 60 * 60000 - 7200000
      AND NOT EXISTS (SELECT 1 FROM underling_queue_minutes
                      WHERE minute = unixepoch('now') / 60 * 60000);
    INSERT INTO underling_queue_minutes (minute, queue, shard, finished, failed)
    VALUES (unixepoch('now') / 60 * 60000, NEW.queue, 0,
            CASE WHEN NEW.state = 'finished' THEN NEW.jobs - OLD.jobs ELSE 0 END,
            CASE WHEN NEW.state = 'failed' THEN NEW.jobs - OLD.jobs ELSE 0 END)
    ON CONFLICT (minute, queue, shard) DO UPDATE SET
        finished = finished + excluded.finished,
        failed = failed + excluded.failed;
END;
