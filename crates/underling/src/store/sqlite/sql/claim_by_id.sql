-- Claims job ?3 for worker ?2 if it is ready at ?1 (ms), ignoring its queue and pauses.
UPDATE underling_jobs AS j SET state = 'active', started = ?1, worker_id = ?2
WHERE j.id IN (SELECT c.id FROM underling_jobs c WHERE c.id = ?3 AND {ready})
RETURNING {returning_columns}
