-- $1 name, $2 duration (s), $3 limit, $4 now (see underling_lock).
SELECT underling_lock($1, $2, $3, COALESCE($4::timestamptz, now()))
