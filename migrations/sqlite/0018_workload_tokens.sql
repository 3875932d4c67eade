-- Tokens scoped to one HTTP workload (see the PostgreSQL migration of the same number): the
-- SHA-256 of each (hex), one per workload; `created` is milliseconds since the Unix epoch.
CREATE TABLE IF NOT EXISTS underling_workload_tokens (
    workload     TEXT    PRIMARY KEY,
    token_sha256 TEXT    NOT NULL UNIQUE,
    created      INTEGER NOT NULL
);
