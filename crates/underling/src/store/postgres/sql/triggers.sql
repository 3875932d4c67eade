-- How many of the triggers named $1 exist on underling_jobs.
SELECT count(*) FROM pg_trigger
WHERE tgrelid = 'underling_jobs'::regclass AND tgname = ANY($1::text[])
