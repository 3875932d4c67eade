-- Removes the workers whose last heartbeat is older than $1 seconds before $2.
DELETE FROM underling_workers WHERE notified < COALESCE($2::timestamptz, now()) - make_interval(secs => $1)
