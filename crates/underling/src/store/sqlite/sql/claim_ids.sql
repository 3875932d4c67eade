-- Claims the jobs ?3 (a JSON array of ids) that are still inactive for worker ?2 (NULL: a
-- lease) at ?1 (ms): the limited claim's picks.
UPDATE underling_jobs AS j SET state = 'active', started = ?1, worker_id = ?2
WHERE j.id IN (SELECT value FROM json_each(?3)) AND j.state = 'inactive'
RETURNING {returning_columns}
