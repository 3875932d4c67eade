-- Removes up to ?7 matching jobs, oldest first. ?1..?6 the filter.
DELETE FROM underling_jobs WHERE id IN (
    SELECT j.id FROM underling_jobs j WHERE {filter} ORDER BY j.id LIMIT ?7)
