-- Removes at most $2 of the audit entries written before $1 (ms), oldest first (one batch).
DELETE FROM underling_audit WHERE seq IN (
    SELECT seq FROM underling_audit WHERE at < $1 ORDER BY at LIMIT $2
)
