-- Tokens scoped to one HTTP workload (`underling workload add --token-env`, `underling workload
-- token`): the server accepts one for POST /api/v1/jobs and for ack, reject and extend of that
-- workload's own jobs, nothing else. Only the SHA-256 of a token is kept (hex); one token per
-- workload (a new one replaces it). A workload named here need not be stored: one from a
-- workers' TOML file has its token here too.
CREATE TABLE IF NOT EXISTS underling_workload_tokens (
    workload     TEXT        PRIMARY KEY,
    token_sha256 TEXT        NOT NULL UNIQUE,
    created      TIMESTAMPTZ NOT NULL
);
