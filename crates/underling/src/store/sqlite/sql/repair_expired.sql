-- Removes up to ?3 inactive jobs that expired before ?1 (ms), with ids above ?2, in id order;
-- returns their ids (the last is where the next batch starts).
DELETE FROM underling_jobs WHERE id IN (
    SELECT id FROM underling_jobs
    WHERE state = 'inactive' AND expires <= ?1 AND id > ?2
    ORDER BY id
    LIMIT ?3)
RETURNING id
