-- Removes a stored workload and revokes its token, in one statement: $1 name. Returns how
-- many workloads were removed (0: none of that name, and then no token is touched).
WITH removed AS (
    DELETE FROM underling_workloads WHERE name = $1 RETURNING name
), revoked AS (
    DELETE FROM underling_workload_tokens WHERE workload IN (SELECT name FROM removed)
)
SELECT count(*) FROM removed
