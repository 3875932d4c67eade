-- The event triggers (migration 0008): each statement that changes jobs sends its transitions
-- to the NOTIFY channel {channel}. Created while an event subscriber holds a lease.
CREATE OR REPLACE TRIGGER underling_events_insert AFTER INSERT ON underling_jobs
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION underling_events_notify('{channel}');
CREATE OR REPLACE TRIGGER underling_events_update AFTER UPDATE ON underling_jobs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION underling_events_notify('{channel}');
CREATE OR REPLACE TRIGGER underling_events_delete AFTER DELETE ON underling_jobs
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION underling_events_notify('{channel}');
