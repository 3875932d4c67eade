-- The events written after $1 (a seq), oldest first, at most $2.
SELECT {event_columns} FROM underling_events WHERE seq > $1 ORDER BY seq LIMIT $2
