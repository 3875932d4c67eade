-- The queues of inactive children of the jobs ?1 (a JSON array), to wake their workers.
SELECT DISTINCT c.queue FROM underling_job_deps d
JOIN underling_jobs c ON c.id = d.child_id
WHERE d.parent_id IN (SELECT value FROM json_each(?1)) AND c.state = 'inactive'
