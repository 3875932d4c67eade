-- Revokes a workload's token: ?1 workload.
DELETE FROM underling_workload_tokens WHERE workload = ?1
