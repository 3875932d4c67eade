-- Every task's published defaults, by name. {schema} names the store's schema, so that the
-- statement also works on a connection the library does not own, whatever its search path.
SELECT name, queue, priority, attempts, timeout_ms, published FROM {schema}underling_tasks
ORDER BY name
