-- A page of matching jobs, newest first, without the ones gone (expired) at $9. $1..$6 the
-- filter, $7 limit, $8 offset, $10 only ids below it (keyset paging; NULL: all).
SELECT {job_columns},
       ARRAY(SELECT parent_id FROM underling_job_deps WHERE child_id = j.id ORDER BY parent_id) AS parents,
       ARRAY(SELECT child_id FROM underling_job_deps WHERE parent_id = j.id ORDER BY child_id) AS children
FROM underling_jobs j
WHERE {filter}
  AND NOT underling_gone(j, COALESCE($9::timestamptz, now()))
  AND ($10::bigint IS NULL OR j.id < $10)
ORDER BY j.id DESC LIMIT $7 OFFSET $8
