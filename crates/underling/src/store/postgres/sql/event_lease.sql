-- Takes or renews the event lease $1 for $2 seconds.
INSERT INTO underling_event_listeners (id, until) VALUES ($1, now() + make_interval(secs => $2))
ON CONFLICT (id) DO UPDATE SET until = EXCLUDED.until
