-- THE READINESS RULE (alias `c`, ?1 now in ms): a job may be claimed when it is inactive, due,
-- not expired and its parents are done (finished; with `lax` also failed; removed or expired
-- count as done).
c.state = 'inactive' AND c.delayed <= ?1 AND (c.expires IS NULL OR c.expires > ?1)
AND (NOT c.has_parents OR NOT EXISTS (
      SELECT 1 FROM underling_job_deps d JOIN underling_jobs p ON p.id = d.parent_id
      WHERE d.child_id = c.id AND p.state <> 'finished' AND NOT (c.lax AND p.state = 'failed')
        AND NOT (p.state = 'inactive' AND p.expires IS NOT NULL AND p.expires <= ?1)))
