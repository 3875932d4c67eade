-- Removes the audit entries written before $1.
DELETE FROM underling_audit WHERE at < $1
