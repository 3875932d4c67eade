-- Waiting for a result (Queue::wait, `underling job wait`): a waiter writes the NOTIFY channel
-- of its store into the job's wait_channel, and the job's settle (finished, or failed for good)
-- or its removal then notifies that channel with the job's id. Jobs nobody waits for cost one
-- inline check of the triggers' WHEN clauses per updated or deleted row: the trigger function
-- runs, and a NOTIFY is sent, only for watched jobs. No existing function changes.
ALTER TABLE underling_jobs ADD COLUMN IF NOT EXISTS wait_channel TEXT;

CREATE OR REPLACE FUNCTION underling_notify_waiters() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify(OLD.wait_channel, OLD.id::text);
    ELSE
        PERFORM pg_notify(NEW.wait_channel, NEW.id::text);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS underling_jobs_settled ON underling_jobs;
CREATE TRIGGER underling_jobs_settled
    AFTER UPDATE ON underling_jobs
    FOR EACH ROW
    WHEN (NEW.wait_channel IS NOT NULL
          AND NEW.state IN ('finished', 'failed')
          AND OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION underling_notify_waiters();

DROP TRIGGER IF EXISTS underling_jobs_removed ON underling_jobs;
CREATE TRIGGER underling_jobs_removed
    AFTER DELETE ON underling_jobs
    FOR EACH ROW
    WHEN (OLD.wait_channel IS NOT NULL)
    EXECUTE FUNCTION underling_notify_waiters();
