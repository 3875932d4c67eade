DELETE FROM underling_locks WHERE expires <= COALESCE($1::timestamptz, now())
