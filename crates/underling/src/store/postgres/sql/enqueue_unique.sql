-- Jobs of which at least one has a unique key, one by one (see underling_enqueue_unique).
-- {schema} names the store's schema, as in enqueue_jobs.sql.
SELECT id, outcome FROM {schema}underling_enqueue_unique($1, $2, $3, $4, $5, $6, $7, $8, $9,
    $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
