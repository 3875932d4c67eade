-- The workload a token is scoped to: $1 the token's SHA-256 (hex).
SELECT workload FROM underling_workload_tokens WHERE token_sha256 = $1
