-- Taken by every change of the event leases and of the event triggers, so that a subscriber
-- that arrives never finds its triggers dropped by one that leaves.
LOCK TABLE underling_event_listeners IN SHARE ROW EXCLUSIVE MODE
