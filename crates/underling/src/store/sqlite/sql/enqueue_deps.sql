-- ?1 a JSON array of [child, parent] pairs.
INSERT OR IGNORE INTO underling_job_deps (child_id, parent_id)
SELECT d.value ->> 0, d.value ->> 1 FROM json_each(?1) d
