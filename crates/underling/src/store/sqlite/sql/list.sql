-- A page of matching jobs, newest first, without the ones gone (expired) at ?9.
-- ?1..?6 the filter, ?7 limit, ?8 offset, ?10 only ids below it (keyset paging; NULL: all).
SELECT {job_columns},
       (SELECT json_group_array(parent_id) FROM underling_job_deps WHERE child_id = j.id) AS parents,
       (SELECT json_group_array(child_id) FROM underling_job_deps WHERE parent_id = j.id) AS children
FROM underling_jobs j
WHERE {filter} AND NOT (j.state = 'inactive' AND j.expires IS NOT NULL AND j.expires <= ?9)
  AND (?10 IS NULL OR j.id < ?10)
ORDER BY j.id DESC LIMIT ?7 OFFSET ?8
