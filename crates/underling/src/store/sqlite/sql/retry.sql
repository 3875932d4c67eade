-- Puts every matching job back to inactive as a new attempt (from any state) and applies the
-- changes given. ?1..?6 the filter, ?7 now (ms), ?8 delay (ms), ?9 queue, ?10 priority,
-- ?11 attempts, ?12 lax, ?13 expire (ms), ?14 whether new parents are given (NULL: keep).
UPDATE underling_jobs AS j SET state = 'inactive', retries = j.retries + 1, retried = ?7,
    delayed = ?7 + ?8, queue = COALESCE(?9, j.queue), priority = COALESCE(?10, j.priority),
    attempts = COALESCE(?11, j.attempts), lax = COALESCE(?12, j.lax),
    expires = CASE WHEN ?13 IS NULL THEN j.expires ELSE ?7 + ?13 END,
    has_parents = CASE WHEN ?14 IS NULL THEN j.has_parents ELSE ?14 END
WHERE {filter}
RETURNING id, queue, delayed
