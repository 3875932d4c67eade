-- $1 worker, $2 status, $3 now.
UPDATE underling_workers SET notified = COALESCE($3::timestamptz, now()), status = $2 WHERE id = $1
