-- How many of the triggers named in the JSON array $1 exist on underling_jobs.
SELECT count(*) FROM sqlite_master
WHERE type = 'trigger' AND tbl_name = 'underling_jobs'
  AND name IN (SELECT value FROM json_each($1))
