-- Removes inactive jobs that expired before $1.
DELETE FROM underling_jobs WHERE state = 'inactive' AND expires <= COALESCE($1::timestamptz, now())
