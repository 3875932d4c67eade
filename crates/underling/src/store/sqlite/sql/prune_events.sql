-- Removes the events written before $1 (ms): every subscriber has read them long since.
DELETE FROM underling_events WHERE at < $1
