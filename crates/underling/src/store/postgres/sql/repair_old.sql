-- Removes up to $3 jobs that finished more than $1 seconds before $2 (now when null), unless a
-- child still waits: the first ones in (finished, id) order after ($4, $5), a keyset on the
-- partial index of finished jobs ($4 null for the first batch). Says how many it removed, how
-- many it picked, and the (finished, id) of the last one picked: where the next batch starts.
WITH picked AS MATERIALIZED (
    SELECT j.id, j.finished FROM underling_jobs j
    WHERE j.state = 'finished'
      AND j.finished <= COALESCE($2::timestamptz, now()) - make_interval(secs => $1)
      AND (j.finished, j.id) > (COALESCE($4::timestamptz, '-infinity'), $5::bigint)
      -- OFFSET 0 keeps this a probe of the children index per row: flattened into an anti
      -- join, the planner may scan every unfinished job once per batch.
      AND NOT EXISTS (SELECT 1 FROM underling_job_deps d JOIN underling_jobs c ON c.id = d.child_id
                      WHERE d.parent_id = j.id AND c.state <> 'finished' OFFSET 0)
    ORDER BY j.finished, j.id
    LIMIT $3
), removed AS (
    -- A job retried (and maybe finished again) since it was picked is no longer old.
    DELETE FROM underling_jobs j USING picked p
    WHERE j.id = p.id AND j.state = 'finished' AND j.finished = p.finished
    RETURNING j.id
)
SELECT (SELECT count(*) FROM removed), (SELECT count(*) FROM picked), last.finished, last.id
FROM (SELECT 1) AS one
LEFT JOIN (SELECT finished, id FROM picked ORDER BY finished DESC, id DESC LIMIT 1) AS last ON true
