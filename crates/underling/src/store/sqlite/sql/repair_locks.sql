DELETE FROM underling_locks WHERE expires <= ?1
