-- Someone waits for job $1: its settle (finished or failed) or its removal notifies channel $2
-- with its id (the triggers of migrations/postgres/0005_wait.sql). A job that has settled
-- already is left alone: the waiter reads it next.
UPDATE underling_jobs SET wait_channel = $2
WHERE id = $1 AND state IN ('inactive', 'active') AND wait_channel IS DISTINCT FROM $2
