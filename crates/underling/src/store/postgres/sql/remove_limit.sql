-- Removes the limit $1 kind, $2 name; says whether there was one. Workers are woken ($3).
WITH gone AS (
    DELETE FROM underling_limits WHERE kind = $1 AND name = $2 RETURNING 1
), woken AS (
    SELECT pg_notify($3, '*') WHERE EXISTS (SELECT 1 FROM gone)
)
SELECT EXISTS (SELECT 1 FROM gone) AND (SELECT count(*) FROM woken) >= 0
