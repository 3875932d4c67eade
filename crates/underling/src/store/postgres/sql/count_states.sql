-- How many jobs are in the states $2 (every state when empty) of the queues $3 (every queue
-- when empty) at $1, without the ones gone (expired): read from the counters (counts.sql).
WITH {counts}
SELECT COALESCE(sum(
    CASE WHEN cardinality($2::text[]) = 0 THEN inactive + active + finished + failed
         ELSE CASE WHEN 'inactive' = ANY($2) THEN inactive ELSE 0 END
            + CASE WHEN 'active' = ANY($2) THEN active ELSE 0 END
            + CASE WHEN 'finished' = ANY($2) THEN finished ELSE 0 END
            + CASE WHEN 'failed' = ANY($2) THEN failed ELSE 0 END END), 0)::bigint
FROM queue_counts
WHERE cardinality($3::text[]) = 0 OR queue = ANY($3)
