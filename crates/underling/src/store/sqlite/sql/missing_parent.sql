-- The first of the parent ids ?1 (a JSON array) that is not a job, if any.
SELECT p.value FROM json_each(?1) p
WHERE NOT EXISTS (SELECT 1 FROM underling_jobs WHERE id = p.value)
ORDER BY p.value LIMIT 1
