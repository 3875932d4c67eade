DROP TRIGGER IF EXISTS underling_audit_insert ON underling_jobs;
DROP TRIGGER IF EXISTS underling_audit_update ON underling_jobs;
DROP TRIGGER IF EXISTS underling_audit_delete ON underling_jobs;
