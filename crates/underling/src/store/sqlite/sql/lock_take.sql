INSERT INTO underling_locks (name, expires) VALUES (?1, ?2)
