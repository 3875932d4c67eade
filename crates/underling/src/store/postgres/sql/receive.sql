DELETE FROM underling_worker_inbox WHERE worker_id = $1 RETURNING id, command, args
