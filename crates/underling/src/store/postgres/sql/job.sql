-- One job with its parents and children, unless it is gone (expired) at $2.
SELECT {job_columns},
       ARRAY(SELECT parent_id FROM underling_job_deps WHERE child_id = j.id ORDER BY parent_id) AS parents,
       ARRAY(SELECT child_id FROM underling_job_deps WHERE parent_id = j.id ORDER BY child_id) AS children
FROM underling_jobs j WHERE j.id = $1 AND NOT underling_gone(j, COALESCE($2::timestamptz, now()))
