-- The audit triggers (migration 0008): each statement that changes jobs writes its
-- transitions to underling_audit. Created by `audit enable`, dropped by `audit disable`.
CREATE OR REPLACE TRIGGER underling_audit_insert AFTER INSERT ON underling_jobs
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION underling_audit_write();
CREATE OR REPLACE TRIGGER underling_audit_update AFTER UPDATE ON underling_jobs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION underling_audit_write();
CREATE OR REPLACE TRIGGER underling_audit_delete AFTER DELETE ON underling_jobs
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION underling_audit_write();
