-- Removes a job unless it is active; says `removed`, or the state that kept it.
WITH target AS (SELECT id, state FROM underling_jobs WHERE id = $1),
del AS (DELETE FROM underling_jobs WHERE id = $1 AND state <> 'active' RETURNING id)
SELECT CASE WHEN (SELECT count(*) FROM del) > 0 THEN 'removed' ELSE state END FROM target
