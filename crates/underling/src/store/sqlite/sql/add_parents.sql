INSERT OR IGNORE INTO underling_job_deps (child_id, parent_id)
SELECT c.value, p.value FROM json_each(?1) c, json_each(?2) p
