-- Every stored workload, by name.
SELECT name, definition, created, updated FROM underling_workloads ORDER BY name
