-- Removes jobs that finished more than $1 seconds before $2, unless a child still waits.
DELETE FROM underling_jobs AS j
WHERE j.state = 'finished' AND j.finished <= COALESCE($2::timestamptz, now()) - make_interval(secs => $1)
  AND NOT EXISTS (SELECT 1 FROM underling_job_deps d JOIN underling_jobs c ON c.id = d.child_id
                  WHERE d.parent_id = j.id AND c.state <> 'finished')
