-- A leased attempt rejected without retry: the job's attempts become the tries it used, so
-- that the settle that follows fails it for good.
UPDATE underling_jobs SET attempts = retries + 1 WHERE id = $1
