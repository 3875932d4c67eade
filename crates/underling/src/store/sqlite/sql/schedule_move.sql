-- The compare-and-set of a tick (see the PostgreSQL statement); it runs in a write
-- transaction, so no other scheduler reads between it and the enqueue.
UPDATE underling_schedules
SET next_run = COALESCE(?3, next_run), updated = ?4
WHERE name = ?1 AND (?2 IS NULL OR (next_run = ?2 AND NOT paused))
RETURNING name
