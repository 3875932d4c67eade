-- Gives back the event lease $1 (NULL: none) and removes the leases that ran out before $2.
DELETE FROM underling_event_listeners WHERE id = $1 OR until < $2
