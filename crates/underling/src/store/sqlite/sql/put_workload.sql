-- Stores a workload: ?1 name, ?2 definition (JSON text), ?3 replace an existing one (0/1),
-- ?4 now (ms). Returns a row when it wrote, none when one of that name is stored and ?3 is 0.
INSERT INTO underling_workloads (name, definition, created, updated)
VALUES (?1, ?2, ?4, ?4)
ON CONFLICT (name) DO UPDATE SET definition = excluded.definition, updated = excluded.updated
    WHERE ?3
RETURNING name
