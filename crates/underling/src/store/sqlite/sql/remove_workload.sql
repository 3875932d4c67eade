-- Removes a stored workload: ?1 name.
DELETE FROM underling_workloads WHERE name = ?1
