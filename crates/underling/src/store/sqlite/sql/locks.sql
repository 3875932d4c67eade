SELECT id, name, expires FROM underling_locks
WHERE expires > ?1 AND (json_array_length(?2) = 0 OR name IN (SELECT value FROM json_each(?2)))
ORDER BY id
