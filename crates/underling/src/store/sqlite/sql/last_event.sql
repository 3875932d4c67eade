SELECT COALESCE(max(seq), 0) FROM underling_events
