-- Takes or renews the event lease $1 until $2 (ms).
INSERT INTO underling_event_listeners (id, until) VALUES ($1, $2)
ON CONFLICT (id) DO UPDATE SET until = excluded.until
