DROP TRIGGER IF EXISTS underling_events_insert ON underling_jobs;
DROP TRIGGER IF EXISTS underling_events_update ON underling_jobs;
DROP TRIGGER IF EXISTS underling_events_delete ON underling_jobs;
