-- Whether a job of queue ?1 is active (the partial index on active jobs).
SELECT EXISTS (SELECT 1 FROM underling_jobs WHERE state = 'active' AND queue = ?1)
