SELECT count(*) FROM underling_locks WHERE name = ?1
