-- Removes the limit ?1 kind, ?2 name.
DELETE FROM underling_limits WHERE kind = ?1 AND name = ?2
