-- HTTP workloads stored in the database (`underling workload add`): each row is a task that
-- workers run by POSTing its jobs to a URL, as a CloudEvent. `definition` holds the
-- workload's settings as JSON (url, mode, timeout, max_concurrency, lease, headers,
-- max_response_bytes), validated by the library; header values are kept as written, so a
-- secret given as `${VAR}` or `env:VAR` stays in the workers' environment, not here.
CREATE TABLE IF NOT EXISTS underling_workloads (
    name       TEXT        PRIMARY KEY,
    definition JSONB       NOT NULL,
    created    TIMESTAMPTZ NOT NULL,
    updated    TIMESTAMPTZ NOT NULL
);
