-- How many event leases are live at $1.
SELECT count(*) FROM underling_event_listeners WHERE until >= $1
