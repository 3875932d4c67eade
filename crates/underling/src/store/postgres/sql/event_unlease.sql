-- Gives back the event lease $1 (NULL: none) and removes the leases that ran out; returns how
-- many live ones are left.
WITH gone AS (
    DELETE FROM underling_event_listeners WHERE id = $1 OR until < now() RETURNING 1
)
SELECT count(*) FROM underling_event_listeners
WHERE until >= now() AND id IS DISTINCT FROM $1
