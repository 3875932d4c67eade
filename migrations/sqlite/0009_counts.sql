-- Counts by counters, not scans (see the PostgreSQL migration of the same number): the number
-- of jobs per queue and class, kept by row triggers in the same transaction as the change.
-- SQLite has one writer at a time, so the triggers update the counter rows directly (no
-- deltas to fold). Classes: the state, with inactive jobs in the delayed index of 0004 apart
-- as 'deferred'. Expired inactive jobs are subtracted by readers (underling_jobs_expiring).
CREATE TABLE IF NOT EXISTS underling_counts (
    queue TEXT    NOT NULL,
    state TEXT    NOT NULL,
    jobs  INTEGER NOT NULL,
    PRIMARY KEY (queue, state)
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS underling_jobs_expiring
    ON underling_jobs (queue, expires) WHERE state = 'inactive' AND expires IS NOT NULL;


DROP TRIGGER IF EXISTS underling_count_insert;
DROP TRIGGER IF EXISTS underling_count_update;
DROP TRIGGER IF EXISTS underling_count_delete;

CREATE TRIGGER underling_count_insert AFTER INSERT ON underling_jobs BEGIN
    INSERT INTO underling_counts (queue, state, jobs)
    VALUES (NEW.queue, CASE WHEN NEW.state = 'inactive'
                             AND NEW.delayed > max(NEW.created, coalesce(NEW.retried, 0),
                                                   coalesce(NEW.promoted, 0))
                            THEN 'deferred' ELSE NEW.state END, 1)
    ON CONFLICT (queue, state) DO UPDATE SET jobs = jobs + 1;
END;

CREATE TRIGGER underling_count_delete AFTER DELETE ON underling_jobs BEGIN
    UPDATE underling_counts SET jobs = jobs - 1
    WHERE queue = OLD.queue
      AND state = CASE WHEN OLD.state = 'inactive'
                        AND OLD.delayed > max(OLD.created, coalesce(OLD.retried, 0),
                                              coalesce(OLD.promoted, 0))
                       THEN 'deferred' ELSE OLD.state END;
END;

-- Only updates that move a job to another class or queue (not notes, not a heartbeat of
-- results) touch the counters.
CREATE TRIGGER underling_count_update AFTER UPDATE OF state, queue, delayed, created, retried, promoted
ON underling_jobs
WHEN OLD.queue IS NOT NEW.queue
  OR (CASE WHEN OLD.state = 'inactive'
            AND OLD.delayed > max(OLD.created, coalesce(OLD.retried, 0), coalesce(OLD.promoted, 0))
           THEN 'deferred' ELSE OLD.state END)
     IS NOT (CASE WHEN NEW.state = 'inactive'
                   AND NEW.delayed > max(NEW.created, coalesce(NEW.retried, 0),
                                         coalesce(NEW.promoted, 0))
                  THEN 'deferred' ELSE NEW.state END)
BEGIN
    UPDATE underling_counts SET jobs = jobs - 1
    WHERE queue = OLD.queue
      AND state = CASE WHEN OLD.state = 'inactive'
                        AND OLD.delayed > max(OLD.created, coalesce(OLD.retried, 0),
                                              coalesce(OLD.promoted, 0))
                       THEN 'deferred' ELSE OLD.state END;
    INSERT INTO underling_counts (queue, state, jobs)
    VALUES (NEW.queue, CASE WHEN NEW.state = 'inactive'
                             AND NEW.delayed > max(NEW.created, coalesce(NEW.retried, 0),
                                                   coalesce(NEW.promoted, 0))
                            THEN 'deferred' ELSE NEW.state END, 1)
    ON CONFLICT (queue, state) DO UPDATE SET jobs = jobs + 1;
END;

DELETE FROM underling_counts;
INSERT INTO underling_counts (queue, state, jobs)
SELECT queue, CASE WHEN state = 'inactive'
                    AND delayed > max(created, coalesce(retried, 0), coalesce(promoted, 0))
                   THEN 'deferred' ELSE state END, count(*)
FROM underling_jobs GROUP BY 1, 2;
