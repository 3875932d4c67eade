(json_array_length(?1) = 0 OR j.id IN (SELECT value FROM json_each(?1)))
AND (json_array_length(?2) = 0 OR j.state IN (SELECT value FROM json_each(?2))
     -- The derived states of inactive jobs (InactiveState), on the database's clock (ms).
     OR (j.state = 'inactive' AND j.retries = 0
         AND j.delayed > CAST(round((julianday('now') - 2440587.5) * 86400000) AS INTEGER)
         AND 'scheduled' IN (SELECT value FROM json_each(?2)))
     OR (j.state = 'inactive' AND j.retries > 0
         AND j.delayed > CAST(round((julianday('now') - 2440587.5) * 86400000) AS INTEGER)
         AND 'retryable' IN (SELECT value FROM json_each(?2)))
     OR (j.state = 'inactive' AND j.has_parents AND 'waiting' IN (SELECT value FROM json_each(?2))
         AND EXISTS (
           SELECT 1 FROM underling_job_deps d JOIN underling_jobs p ON p.id = d.parent_id
           WHERE d.child_id = j.id AND p.state <> 'finished' AND NOT (j.lax AND p.state = 'failed')
             AND NOT (p.state = 'inactive' AND p.expires IS NOT NULL
                      AND p.expires <= CAST(round((julianday('now') - 2440587.5) * 86400000) AS INTEGER)))))
AND (json_array_length(?3) = 0 OR j.queue IN (SELECT value FROM json_each(?3)))
AND (json_array_length(?4) = 0 OR j.task IN (SELECT value FROM json_each(?4)))
AND NOT EXISTS (SELECT 1 FROM json_each(?5) k WHERE NOT EXISTS (
                  SELECT 1 FROM json_each(j.notes) n WHERE n.key = k.value))
AND (?6 IS NULL OR j.finished < ?6)
