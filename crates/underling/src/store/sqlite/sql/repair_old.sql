-- Removes up to ?3 jobs that finished more than ?2 ms before ?1 (ms), unless a child still
-- waits: the first ones in (finished, id) order after (?4, ?5), a keyset on the partial index
-- of finished jobs. Returns their ids and finish times (the last is where the next batch
-- starts).
DELETE FROM underling_jobs WHERE id IN (
    SELECT j.id FROM underling_jobs AS j
    WHERE j.state = 'finished' AND j.finished <= ?1 - ?2 AND (j.finished, j.id) > (?4, ?5)
      AND NOT EXISTS (SELECT 1 FROM underling_job_deps d JOIN underling_jobs c ON c.id = d.child_id
                      WHERE d.parent_id = j.id AND c.state <> 'finished')
    ORDER BY j.finished, j.id
    LIMIT ?3)
RETURNING id, finished
