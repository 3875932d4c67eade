-- Removes at most $2 of the audit entries written before $1, oldest first (one batch: a
-- prune of millions never holds one long transaction).
DELETE FROM underling_audit WHERE id IN (
    SELECT id FROM underling_audit WHERE at < $1 ORDER BY at LIMIT $2
)
