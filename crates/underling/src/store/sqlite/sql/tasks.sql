-- Every task's published defaults, by name.
SELECT name, queue, priority, attempts, timeout_ms, published FROM underling_tasks ORDER BY name
