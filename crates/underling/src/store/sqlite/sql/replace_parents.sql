-- Removes every parent of the jobs ?1 (a JSON array); add_parents.sql then adds the new ones.
DELETE FROM underling_job_deps WHERE child_id IN (SELECT value FROM json_each(?1))
