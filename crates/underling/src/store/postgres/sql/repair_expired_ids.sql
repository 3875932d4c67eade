-- Up to $3 inactive jobs that expired before $1 (now when null), with ids above $2, in id
-- order: a read, without locks, of the jobs repair_expired then removes in batches.
SELECT id FROM underling_jobs
WHERE state = 'inactive' AND expires <= COALESCE($1::timestamptz, now()) AND id > $2
ORDER BY id
LIMIT $3
