-- How many jobs are in the states ?2 (a JSON array; every state when empty) of the queues ?3
-- (every queue when empty) at ?1 (ms), without the ones gone (expired): from the counters.
WITH {counts}
SELECT coalesce(sum(
    CASE WHEN json_array_length(?2) = 0 THEN inactive + active + finished + failed
         ELSE CASE WHEN 'inactive' IN (SELECT value FROM json_each(?2)) THEN inactive ELSE 0 END
            + CASE WHEN 'active' IN (SELECT value FROM json_each(?2)) THEN active ELSE 0 END
            + CASE WHEN 'finished' IN (SELECT value FROM json_each(?2)) THEN finished ELSE 0 END
            + CASE WHEN 'failed' IN (SELECT value FROM json_each(?2)) THEN failed ELSE 0 END END), 0)
FROM queue_counts
WHERE json_array_length(?3) = 0 OR queue IN (SELECT value FROM json_each(?3))
