-- Audit entries, newest first: $1 only this job (NULL: all), $2 only entries below (NULL:
-- from the newest), $3 at most this many.
SELECT {event_columns} FROM underling_audit
WHERE ($1 IS NULL OR id = $1) AND ($2 IS NULL OR seq < $2)
ORDER BY seq DESC
LIMIT $3
