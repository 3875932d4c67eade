-- Removes up to ?7 matching jobs with ids above ?8, oldest first; returns their ids (the last
-- is where the next batch starts). ?1..?6 the filter.
DELETE FROM underling_jobs WHERE id IN (
    SELECT j.id FROM underling_jobs j WHERE {filter} AND j.id > ?8 ORDER BY j.id LIMIT ?7)
RETURNING id
