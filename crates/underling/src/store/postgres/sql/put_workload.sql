-- Stores a workload: $1 name, $2 definition (JSON), $3 replace an existing one, $4 now (null:
-- the transaction's time). Returns a row when it wrote, none when one of that name is stored
-- and $3 is false.
INSERT INTO underling_workloads (name, definition, created, updated)
VALUES ($1, $2, coalesce($4, now()), coalesce($4, now()))
ON CONFLICT (name) DO UPDATE SET definition = excluded.definition, updated = excluded.updated
    WHERE $3
RETURNING name
