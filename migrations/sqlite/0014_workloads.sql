-- HTTP workloads stored in the database (see the PostgreSQL migration of the same number).
-- `definition` is JSON text; times are milliseconds since the Unix epoch.
CREATE TABLE IF NOT EXISTS underling_workloads (
    name       TEXT    PRIMARY KEY,
    definition TEXT    NOT NULL,
    created    INTEGER NOT NULL,
    updated    INTEGER NOT NULL
);
