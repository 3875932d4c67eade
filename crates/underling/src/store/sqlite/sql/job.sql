SELECT {job_columns},
       (SELECT json_group_array(parent_id) FROM underling_job_deps WHERE child_id = j.id) AS parents,
       (SELECT json_group_array(child_id) FROM underling_job_deps WHERE parent_id = j.id) AS children
-- (unless it is gone: expired at ?2, as in sql/ready.sql)
FROM underling_jobs j WHERE j.id = ?1 AND NOT (j.state = 'inactive' AND j.expires IS NOT NULL AND j.expires <= ?2)
