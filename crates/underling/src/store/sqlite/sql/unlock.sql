DELETE FROM underling_locks WHERE id = (
    SELECT id FROM underling_locks WHERE name = ?1 AND expires > ?2 ORDER BY expires LIMIT 1)
