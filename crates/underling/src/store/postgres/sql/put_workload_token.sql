-- Sets a workload's token: $1 workload, $2 the token's SHA-256 (hex), $3 now (null: the
-- transaction's time). Replaces the workload's token, if it had one.
INSERT INTO underling_workload_tokens (workload, token_sha256, created)
VALUES ($1, $2, coalesce($3, now()))
ON CONFLICT (workload) DO UPDATE SET token_sha256 = excluded.token_sha256, created = excluded.created
