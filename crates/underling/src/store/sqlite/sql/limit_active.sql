-- The active jobs, as the limited claim counts them (the partial index on active jobs).
SELECT queue, task, args, notes FROM underling_jobs WHERE state = 'active'
