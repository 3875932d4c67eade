-- Failed attempts per hour (ms), for `history`: counted when they happen, since a retried one
-- leaves no trace in the job's final state. Only a job leaving `active` for `failed`, or for
-- `inactive` with its retry count raised (a retry after a failure, or a rescue), counts.
CREATE TABLE IF NOT EXISTS underling_failed_attempts (
    hour     INTEGER PRIMARY KEY,
    attempts INTEGER NOT NULL DEFAULT 0
);

CREATE TRIGGER IF NOT EXISTS underling_jobs_failed_attempt
AFTER UPDATE OF state ON underling_jobs
WHEN OLD.state = 'active'
     AND (NEW.state = 'failed' OR (NEW.state = 'inactive' AND NEW.retries > OLD.retries))
BEGIN
    INSERT INTO underling_failed_attempts (hour, attempts)
    VALUES (COALESCE(CASE WHEN NEW.state = 'failed' THEN NEW.finished ELSE NEW.retried END, 0)
            / 3600000 * 3600000, 1)
    ON CONFLICT (hour) DO UPDATE SET attempts = attempts + 1;
END;
