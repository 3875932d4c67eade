-- Failed attempts per hour, for `history`: a failed attempt that is retried leaves no trace in
-- the job's final state, so it is counted when it happens. A row trigger whose WHEN clause
-- only lets failed attempts through (a job leaving `active` for `failed`, or for `inactive`
-- with its retry count raised: a retry after a failure or a rescue; a release, which uses no
-- attempt, is not counted); every other update costs the inline check only. One row per hour.
CREATE TABLE IF NOT EXISTS underling_failed_attempts (
    hour     TIMESTAMPTZ PRIMARY KEY,
    attempts BIGINT      NOT NULL DEFAULT 0
);

CREATE OR REPLACE FUNCTION underling_count_failed_attempt() RETURNS trigger AS $$
BEGIN
    -- The settle's own time: `finished` for the last attempt, `retried` for one retried.
    INSERT INTO underling_failed_attempts AS f (hour, attempts)
    VALUES (date_trunc('hour',
                       COALESCE(CASE WHEN NEW.state = 'failed' THEN NEW.finished ELSE NEW.retried END,
                                now()),
                       'UTC'),
            1)
    ON CONFLICT (hour) DO UPDATE SET attempts = f.attempts + 1;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql SET search_path FROM CURRENT;

DROP TRIGGER IF EXISTS underling_jobs_failed_attempt ON underling_jobs;
CREATE TRIGGER underling_jobs_failed_attempt
    AFTER UPDATE ON underling_jobs
    FOR EACH ROW
    WHEN (OLD.state = 'active'
          AND (NEW.state = 'failed' OR (NEW.state = 'inactive' AND NEW.retries > OLD.retries)))
    EXECUTE FUNCTION underling_count_failed_attempt();
