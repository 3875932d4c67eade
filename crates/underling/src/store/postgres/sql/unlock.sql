-- Releases the live hold on $1 that expires first. $2 now.
DELETE FROM underling_locks WHERE id = (
    SELECT id FROM underling_locks WHERE name = $1 AND expires > COALESCE($2::timestamptz, now())
    ORDER BY expires LIMIT 1)
