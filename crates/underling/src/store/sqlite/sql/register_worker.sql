INSERT INTO underling_workers (host, pid, started, notified, status)
VALUES (?1, ?2, ?3, ?3, ?4) RETURNING id
