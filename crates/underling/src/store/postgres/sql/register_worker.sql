-- $1 host, $2 pid, $3 status, $4 now.
INSERT INTO underling_workers (host, pid, status, started, notified)
SELECT $1, $2, $3, t.at, t.at FROM (SELECT COALESCE($4::timestamptz, now()) AS at) t
RETURNING id
