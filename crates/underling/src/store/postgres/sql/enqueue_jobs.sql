-- Many jobs, with their dependencies, in one statement (see underling_enqueue_jobs).
-- {schema} names the store's schema, so that the statement also works on a connection the
-- library does not own, whatever its search path.
SELECT id FROM {schema}underling_enqueue_jobs($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
