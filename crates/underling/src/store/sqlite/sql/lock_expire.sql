DELETE FROM underling_locks WHERE name = ?1 AND expires <= ?2
