-- The job that has unique key ?1, if any: id, state, scope, end of period, expiry, parents.
SELECT id, state, unique_scope, unique_until, expires, has_parents, queue
FROM underling_jobs WHERE unique_key = ?1
