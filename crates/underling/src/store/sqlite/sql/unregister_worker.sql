DELETE FROM underling_workers WHERE id = ?1
