-- The attempts active under worker ?1, by job id.
SELECT id, retries FROM underling_jobs WHERE state = 'active' AND worker_id = ?1 ORDER BY id
