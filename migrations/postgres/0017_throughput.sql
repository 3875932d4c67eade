-- Throughput for the web UI, by counters, not scans: jobs that ended per minute (all queues,
-- and per queue) over the last hour.
--
-- Finished and failed jobs and failed attempts per minute, for the dashboard's chart of the
-- last hour. Counters, not scans, as for the hours of 0007: a row trigger on the hourly counters
-- (underling_history) adds each change of an hour's row to the current minute's row of the same
-- shard, in the same transaction. Every statement that counts settles (the worker's cycle,
-- repair's stuck jobs) is counted here too without being changed, at one trigger call per
-- statement and shard, not per job. The minute is the database's clock (`now()`, the
-- transaction's start). Minutes older than two hours are removed as each new minute begins.
CREATE TABLE IF NOT EXISTS underling_history_minutes (
    minute          TIMESTAMPTZ NOT NULL,
    shard           INTEGER     NOT NULL,
    finished        BIGINT      NOT NULL DEFAULT 0,
    failed          BIGINT      NOT NULL DEFAULT 0,
    failed_attempts BIGINT      NOT NULL DEFAULT 0,
    PRIMARY KEY (minute, shard)
);

CREATE OR REPLACE FUNCTION underling_history_count_minute() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    m TIMESTAMPTZ := date_trunc('minute', now());
    f BIGINT := NEW.finished;
    x BIGINT := NEW.failed;
    a BIGINT := NEW.failed_attempts;
    began BOOLEAN;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        f := f - OLD.finished;
        x := x - OLD.failed;
        a := a - OLD.failed_attempts;
    END IF;
    IF f = 0 AND x = 0 AND a = 0 THEN
        RETURN NULL;
    END IF;
    INSERT INTO underling_history_minutes AS h (minute, shard, finished, failed, failed_attempts)
    VALUES (m, NEW.shard, f, x, a)
    ON CONFLICT (minute, shard) DO UPDATE SET
        finished = h.finished + excluded.finished,
        failed = h.failed + excluded.failed,
        failed_attempts = h.failed_attempts + excluded.failed_attempts
    RETURNING xmax = 0 INTO began;
    IF began THEN
        DELETE FROM underling_history_minutes WHERE minute < m - interval '2 hours';
    END IF;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE TRIGGER underling_history_minutes AFTER INSERT OR UPDATE ON underling_history
    FOR EACH ROW EXECUTE FUNCTION underling_history_count_minute();

-- Jobs that ended per queue and minute, for each queue's throughput on the queues page: a
-- statement trigger on the count deltas of 0009 (each statement's net change per queue and
-- state, written by the count triggers on the jobs) adds the jobs that entered 'finished' or
-- 'failed' to the current minute's row of the queue, on the session's shard as for the hours,
-- so that workers settling at once do not queue on one row. Rows go in queue order (no
-- deadlock between statements of several queues). Minutes older than two hours are removed
-- as each new minute begins.
CREATE TABLE IF NOT EXISTS underling_queue_minutes (
    minute   TIMESTAMPTZ NOT NULL,
    queue    TEXT        NOT NULL,
    shard    INTEGER     NOT NULL,
    finished BIGINT      NOT NULL DEFAULT 0,
    failed   BIGINT      NOT NULL DEFAULT 0,
    PRIMARY KEY (minute, queue, shard)
);

CREATE OR REPLACE FUNCTION underling_queue_count_minute() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    m TIMESTAMPTZ := date_trunc('minute', now());
    ended BIGINT;
BEGIN
    SELECT count(*) INTO ended FROM underling_new_deltas
    WHERE state IN ('finished', 'failed') AND jobs > 0;
    IF ended = 0 THEN
        RETURN NULL;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM underling_queue_minutes WHERE minute = m) THEN
        DELETE FROM underling_queue_minutes WHERE minute < m - interval '2 hours';
    END IF;
    INSERT INTO underling_queue_minutes AS q (minute, queue, shard, finished, failed)
    SELECT m, queue, pg_backend_pid() % 16,
           COALESCE(sum(jobs) FILTER (WHERE state = 'finished'), 0),
           COALESCE(sum(jobs) FILTER (WHERE state = 'failed'), 0)
    FROM underling_new_deltas
    WHERE state IN ('finished', 'failed') AND jobs > 0
    GROUP BY queue ORDER BY queue
    ON CONFLICT (minute, queue, shard) DO UPDATE SET
        finished = q.finished + excluded.finished,
        failed = q.failed + excluded.failed;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE TRIGGER underling_queue_minutes AFTER INSERT ON underling_count_deltas
    REFERENCING NEW TABLE AS underling_new_deltas
    FOR EACH STATEMENT EXECUTE FUNCTION underling_queue_count_minute();
