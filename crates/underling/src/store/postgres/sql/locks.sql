-- Live holds of the names $1 (all when empty). $2 now.
SELECT id, name, expires FROM underling_locks
WHERE expires > COALESCE($2::timestamptz, now()) AND (cardinality($1::text[]) = 0 OR name = ANY($1))
ORDER BY id
