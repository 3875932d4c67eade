-- $1 command, $2 args, $3 workers (all when empty), $4 now.
INSERT INTO underling_worker_inbox (worker_id, command, args, sent)
SELECT id, $1, $2, COALESCE($4::timestamptz, now()) FROM underling_workers
WHERE cardinality($3::bigint[]) = 0 OR id = ANY($3)
