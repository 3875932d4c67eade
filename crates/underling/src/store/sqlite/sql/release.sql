-- Gives back attempts ?1 ([id, retries] pairs) that worker ?2 claimed and never started.
UPDATE underling_jobs AS j SET state = 'inactive', started = NULL, worker_id = NULL
FROM (SELECT value ->> 0 AS id, value ->> 1 AS retries FROM json_each(?1)) AS i
WHERE j.id = i.id AND j.retries = i.retries AND j.state = 'active' AND j.worker_id = ?2
RETURNING queue
