-- How many jobs match, without the ones gone (expired) at $7. $1..$6 the filter.
SELECT count(*) FROM underling_jobs j
WHERE {filter} AND NOT underling_gone(j, COALESCE($7::timestamptz, now()))
